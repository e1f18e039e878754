"""evaluate(): an LDMPolicy (or SB3-style predict policies) on many envs, normalised scores.

Owns: the start-up (`prepare`: the env list, reference runs, spaces and per-env step limits,
as an `EvalPlan`), the choice of who plays it (`PLAYERS`: ldm/eval/players.py on this
machine, ldm/eval/cluster.py on a Ray cluster), turning the protocol's bookkeeping into `EnvResult`s (scores, the
reason an env has no reference) and the `EvalResult` (with the expert-normalised scores, from
cached or newly measured random scores, and the aggregates). Imports
ldm.data, ldm.envs, ldm.tokenizer, the protocol, the players and the records; must not import ldm.train or ldm.pipeline (nor the
model: a policy arrives as an object).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ldm.data import Store
from ldm.errors import EvalError, LDMError
from ldm.eval.aggregate import aggregates
from ldm.eval.config import EvalConfig
from ldm.eval.groups import GroupResult, Partial, groups
from ldm.eval.players import Played, play_local
from ldm.eval.protocol import EnvRun, rollout_seeds
from ldm.eval.results import EnvResult, EvalResult, Provenance
from ldm.eval.scores import (
    Reference,
    attach_expert_scores,
    normalised_score,
    reference_runs,
    summarise,
)
from ldm.eval.video import attach_clips
from ldm.tokenizer import act_layout, obs_dim_type


def _env_ids(store: Store, env_ids: list[str] | None, library: str | None) -> list[str]:
    if env_ids:
        return list(env_ids)
    ids = sorted({e.env_id for e in store.runs(curated_only=True).values()})
    if library:
        ids = [i for i in ids if i.split("/", 1)[0] == library]
    if not ids:
        raise EvalError(
            f"store {store.path} has no curated runs to evaluate against"
            + (f" in library {library}" if library else "")
        )
    return ids


def require_in_store(store: Store, env_ids: list[str]) -> None:
    """Every env asked for by name must have a run in the store: its anchors make the score.
    A typo names the catalogued ids close to it, an env outside the store the store's envs
    (and `ldm play`, which plays any env without a score)."""
    from ldm.envs.library.registry import resolve_env_id

    known = sorted({e.env_id for e in store.runs().values()})
    for env_id in env_ids:
        if env_id in known:
            continue
        try:
            resolve_env_id(env_id)
        except LDMError as e:
            raise EvalError(f"--envs {env_id}: {e}") from None
        close = difflib.get_close_matches(env_id, known, n=5, cutoff=0.3) or known[:5]
        raise EvalError(
            f"--envs {env_id}: store {store.path} has no run of it, so no reference to score "
            f"against; its envs include {close} ({len(known)} in all). To watch a model act in "
            f"an env outside the store: `ldm play CHECKPOINT {env_id}`"
        )


@dataclass(frozen=True)
class EvalPlan:
    """What an evaluation plays, decided before any env starts: `prepare`'s answer."""

    runs: tuple[EnvRun, ...]
    """The envs to play, with their spaces, rollout seeds and step limits (no slots yet)."""
    rejected: tuple[EnvResult, ...]
    """Envs that cannot be played (spaces outside the model's limits, unknown env)."""
    refs: dict[str, Reference | None]
    """Every env's reference run (None: it has none)."""


def prepare(
    store: Store,
    env_ids: list[str] | None,
    cfg: EvalConfig | None = None,
    library: str | None = None,
    references: bool = False,
    scorable_only: bool = False,
) -> EvalPlan:
    """The evaluation's start-up: the env list, each env's reference run (the manifest read
    once), its spaces and its step limit; `references`: only envs that have a reference (the
    others have nothing to act with); `scorable_only`: an env nothing could score is not
    played but listed with why (`unplayed`): one without any run in the store (every job of
    it failed: nothing measured its episodes), or without a curated reference and without a
    published expert score (with `cfg.expert_scores`). Reads the store and the catalog;
    starts no env."""
    cfg = cfg or EvalConfig()
    ids = _env_ids(store, env_ids, library)
    every = store.runs()  # the manifest, read once for every env
    refs = reference_runs(store, ids, every)
    if references:
        ids = [e for e in ids if refs[e] is not None]
    by_env: dict[str, list[str]] = {}
    for run_id, entry in every.items():
        by_env.setdefault(entry.env_id, []).append(run_id)
    skipped = []
    if scorable_only:
        why = {e: _unscorable(e, e in by_env, refs[e] is not None, cfg) for e in ids}
        skipped = [unplayed(store, e, w) for e, w in why.items() if w]
        ids = [e for e in ids if not why[e]]
    runs, rejected = playable_runs(ids, cfg)
    rejected += skipped
    for run in runs:
        ref = refs[run.env_id]
        metas = [ref.meta] if ref is not None else [
            store.open_run(r).meta for r in by_env.get(run.env_id, []) if cfg.episode_limit_factor
        ]  # fmt: skip
        run.step_limit = episode_step_limit(run.env_id, metas, cfg)
    return EvalPlan(tuple(runs), tuple(rejected), refs)


def _unscorable(env_id: str, has_runs: bool, has_reference: bool, cfg: EvalConfig) -> str:
    """Why nothing could score an env's returns ('' where something can)."""
    from ldm.eval.experts import expert_score

    if not has_runs:
        return "with no run, nothing measured its episodes (no step limit, no score)"
    if not has_reference and not (cfg.expert_scores and expert_score(env_id)):
        return "nothing to score its returns against (no published expert score either)"
    return ""


def unplayed(store: Store, env_id: str, why: str) -> EnvResult:
    """A failed result for an env not played because nothing could score it (an env whose
    episodes never end within a run would also play to the `max_steps` guard): the error
    says why it has no reference and why that leaves it unscored."""
    return EnvResult(
        env_id,
        "failed",
        error=f"{env_id}: not played: {why_no_reference(store, env_id)}; {why}. Its jobs' "
        "errors are in the store's refgen/jobs.json; `ldm eval --envs` plays it all the same",
    )


def env_run(env_id: str, cfg: EvalConfig) -> EnvRun:
    """An env's protocol bookkeeping (spaces, rollout seeds); an LDMError where the env is
    unknown or its spaces are outside the model's limits."""
    from ldm.envs import env_spaces

    obs_spec, act_spec = env_spaces(env_id, backend=cfg.backend)
    act_layout(act_spec)  # the model's action limits: a clear error for this env only
    obs_dim_type(obs_spec)
    return EnvRun(env_id, obs_spec, act_spec, rollout_seeds(env_id, cfg))


def playable_runs(env_ids: list[str], cfg: EvalConfig) -> tuple[list[EnvRun], list[EnvResult]]:
    """The protocol's runs of the envs that can be played (their spaces within the model's
    limits; no slots, no step limits yet) and a failed EnvResult for each of the others."""
    runs, rejected = [], []
    for env_id in env_ids:
        try:
            runs.append(env_run(env_id, cfg))
        except LDMError as e:
            msg = str(e) if env_id in str(e) else f"{env_id}: {e}"
            rejected.append(EnvResult(env_id, "failed", error=msg))
    return runs, rejected


def prepare_runs(env_ids: list[str], cfg: EvalConfig) -> tuple[list[EnvRun], list[EnvResult]]:
    """`playable_runs` with their slots numbered in order (no reference read: the
    random-score measurement's start-up)."""
    runs, rejected = playable_runs(env_ids, cfg)
    for i, run in enumerate(runs):
        run.slots = list(range(i * cfg.rollouts, (i + 1) * cfg.rollouts))
    return runs, rejected


#: who plays a plan's envs, by `EvalConfig.runner` (imported when chosen: Ray's only then)
PLAYERS: dict[str, Callable[[], Callable[..., Played]]] = {
    "local": lambda: play_local,
    "ray": lambda: importlib.import_module("ldm.eval.cluster").play_on_ray,
}


def evaluate(
    policy: Any,
    env_ids: list[str] | None,
    store: Store | str,
    cfg: EvalConfig | None = None,
    library: str | None = None,
    progress: bool = True,
    video_dir: str | Path | None = None,
    per_env: Callable[[str], Any] | None = None,
    partial: Partial | None = None,
    scorable_only: bool = False,
) -> EvalResult:
    """Evaluate `policy` (an LDMPolicy, or None for the store's reference policies) by the
    paper's protocol; returns the record written to results.json. With `cfg.video` and a
    `video_dir`, each env's first episode is recorded there (its result's `clip`). With
    `cfg.runner = "ray"` the envs are played in shares over a Ray cluster's nodes
    (ldm/eval/cluster.py): the same results for the same seeds. `per_env` (with policy None):
    env id -> an SB3-style `predict` policy for it, played on this machine instead of the
    references (a baseline, e.g. ldm.eval.retrieval's; the result's policy is "baseline").
    The envs are played `cfg.envs_at_once` at a time; with `partial`, each finished group is
    kept there and a rerun plays only the others (ldm/eval/groups.py). `scorable_only`: envs
    nothing could score are listed as failed with why, not played (`prepare`)."""
    if policy is not None and per_env is not None:
        raise EvalError("evaluate() takes an LDM policy or per_env policies, not both")
    cfg = cfg or EvalConfig()
    store = store if isinstance(store, Store) else Store(store, create=False)
    references = policy is None and per_env is None
    plan = prepare(store, env_ids, cfg, library, references=references,
                   scorable_only=scorable_only)  # fmt: skip
    t0 = time.time()
    envs, model_calls, steps = list(plan.rejected), 0, 0
    for group in groups(list(plan.runs), cfg.envs_at_once if cfg.runner == "local" else 0):
        ids = [r.env_id for r in group]
        done = partial.load(cfg, ids) if partial is not None else None
        if done is None:
            done = _play_group(policy, group, plan.refs, store, cfg, progress, video_dir, per_env)
            if partial is not None:
                partial.save(cfg, ids, done)
        envs += done.envs
        model_calls, steps = model_calls + done.model_calls, steps + done.steps
    envs.sort(key=lambda e: e.env_id)
    result = EvalResult(
        policy="ldm" if policy is not None else "references" if per_env is None else "baseline",
        store=str(store.path),
        config=cfg,
        envs=tuple(envs),
        summary=summarise(envs),
        seconds=time.time() - t0,
        model_calls=model_calls,
        steps=steps,
        provenance=Provenance.of(policy),
    )
    if cfg.expert_scores:
        from ldm.eval.random_scores import random_scores

        ids = [r.env_id for r in plan.runs]
        randoms = random_scores(ids, backend=cfg.backend, progress=progress)
        result = attach_expert_scores(result, {e: s.mean for e, s in randoms.items()})
    return replace(result, aggregates=aggregates(result))


def _play_group(policy: Any, runs: list[EnvRun], refs: dict[str, Any], store: Store,
                cfg: EvalConfig, progress: bool, video_dir: str | Path | None,
                per_env: Callable[[str], Any] | None) -> GroupResult:  # fmt: skip
    """Play one group of envs by the protocol; their results with clips attached."""
    if per_env is not None:
        played = play_local(None, runs, refs, store, cfg, progress, video_dir, per_env=per_env)
    else:
        played = PLAYERS[cfg.runner]()(policy, runs, refs, store, cfg, progress, video_dir)
    envs = [_env_result(r, refs[r.env_id], store) for r in played.runs]
    if played.clips:
        envs = attach_clips(envs, played.clips)
    return GroupResult(tuple(envs), played.stats.model_calls, played.stats.steps)


def episode_step_limit(env_id: str, metas: Sequence[Any], cfg: EvalConfig) -> int | None:
    """The protocol's per-episode step limit of an env: `episode_limit_factor` x the longest
    episode of `metas`: its reference run's, or where it has no curated reference, its runs'
    whatever their verdict (they still say how long its episodes are; without a limit such an
    env played to its own limit or the `max_steps` guard for no score, the wide run's first
    evaluation group's last 30 min). None without a run, with the factor 0, or where the
    catalog declares a shorter time limit for the env. A run whose episodes the hub's
    default limit cut (`step_limit` in its meta: the env has no time limit of its own) sets
    that limit: the LDM plays the episodes its reference played."""
    recorded = [m.extra["step_limit"] for m in metas if m.extra.get("step_limit")]
    if recorded:
        return int(min(recorded))
    if not cfg.episode_limit_factor:
        return None
    from ldm.envs import episode_step_limit as limit_for

    lengths = [e.length for m in metas for e in m.episodes]
    return limit_for(env_id, max(lengths, default=0), cfg.episode_limit_factor)


def why_no_reference(store: Store, env_id: str) -> str:
    """Why an env has no curated reference, in words: its runs' curation reasons (p-values,
    the 95% rule), its failed jobs' errors (crashed, no episode within the budget), or that
    none was run."""
    runs = {r: e for r, e in store.runs(env_id=env_id).items() if e.verdict != "excluded"}
    if runs:
        reasons = []
        for rid in runs:
            meta = store.open_run(rid, episodes=False).meta
            cur = meta.curation
            why = ("; ".join(cur.reasons) or cur.verdict) if cur else "not curated"
            name, seed = meta.extra.get("candidate", rid), meta.extra.get("seed", "?")
            stop = meta.extra.get("stop", {}).get("reason")  # why the run ended (refgen)
            reasons.append(f"{name} seed {seed}: {why}" + (f" (stopped: {stop})" if stop else ""))
        return f"no curated reference: every run failed curation ({' | '.join(reasons)})"
    jobs_file = store.path / "refgen" / "jobs.json"
    if jobs_file.exists():
        stat = jobs_file.stat()
        failed = [
            f"{k.split(':')[1]}: {error}"
            for k, error in _failed_jobs(str(jobs_file), stat.st_mtime_ns, stat.st_size)
            if f":{env_id}:" in k
        ]
        if failed:
            return f"no curated reference: its jobs failed ({' | '.join(failed)})"
    return "no curated reference: no reference run in the store (not planned or not run yet)"


@functools.lru_cache(maxsize=4)
def _failed_jobs(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """(job key, first line of its error) of every failed job in a refgen jobs.json, read
    once per version of the file (a wide run asks for each of its unplayed envs)."""
    import json

    from ldm.refgen.jobs import JobResult

    results = {k: JobResult.from_dict(v) for k, v in json.loads(Path(path).read_text()).items()}
    return tuple(
        (k, (r.error or "?").splitlines()[0][:200])
        for k, r in results.items()
        if r.status == "failed"
    )


def _env_result(run: EnvRun, ref: Reference | None, store: Store) -> EnvResult:
    returns = [x for r in run.returns for x in r]
    mean = float(np.mean(returns)) if returns else None
    result = EnvResult(
        env_id=run.env_id,
        status="failed" if run.error else ("cut" if run.cut else "ok"),
        returns=tuple(tuple(r) for r in run.returns),
        episodes=len(returns),
        seeds=tuple(run.seeds),
        mean_return=mean,
        step_limit=run.step_limit,
        cut_episodes=run.cut_episodes,
        error=run.error,
    )
    if ref is None:
        return replace(result, note=why_no_reference(store, run.env_id))
    run_id, meta = ref
    score = normalised_score(mean, meta.first10, meta.last10) if returns else None
    note = (
        "not scorable: the reference did not learn (first10 == last10)"
        if returns and score is None
        else None
    )
    return replace(
        result,
        reference_run=run_id,
        reference_stop=meta.extra.get("stop", {}).get("reason"),
        first10=meta.first10,
        last10=meta.last10,
        normalised_score=score,
        note=note,
    )
