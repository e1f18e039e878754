"""The reference-policy stage: rank candidates per library, train references, relabel, curate.

Every step is resumable: jobs by the runner's manifest, relabelling by each run's
`relabelled` flag, curation by recomputing verdicts. Tables go to `<store>/refgen/`.

Owns: `RefGenConfig`, ranking, and `run_refgen` (the stage's order of work); the tables
and the summary it writes are the records of ldm/refgen/records.py. Imports ldm.data,
ldm.envs (its backend names; the hub lazily), refgen's planner, runner, curation and records; must not import
ldm.model, ldm.train, ldm.eval or ldm.pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from itertools import permutations
from typing import Any

import numpy as np

from ldm.data import Curation, ManifestEntry, Store
from ldm.envs import BACKEND_NAMES, Backend
from ldm.errors import RefGenError
from ldm.refgen.candidates import Candidate, load_pool
from ldm.refgen.curate import curate_env, relabel_run, welch_greater
from ldm.refgen.jobs import JobResult
from ldm.refgen.plan import LibraryPlan, compatible, envs_by_library, plan_library
from ldm.refgen.records import (
    LibraryOutcome,
    RankedCandidate,
    RankingTable,
    RefGenSummary,
    RunOutcome,
)
from ldm.refgen.runner import RUNNERS, Runner, run_jobs


@dataclass
class RefGenConfig:
    """Settings of the reference-policy stage (paper defaults; presets shrink the budgets)."""

    envs: list[str] = field(default_factory=list)
    """Qualified env ids to generate references for (grouped by library)."""
    libraries: list[str] = field(default_factory=list)
    """Whole libraries: every catalogued env of each (capped by max_envs_per_library)."""
    candidates: list[str] | None = None
    """Names of pool candidates to consider; None = the whole pool."""
    pool: str | None = None
    """Candidate pool file; None = ldm/refgen/candidates.toml."""
    rank_envs: int = 5
    """K: envs per library on which candidates are ranked."""
    rank_budget: int = 3_000_000
    """Transitions per ranking run."""
    top_n: int = 3
    """N: candidates trained as references on every env of the library."""
    train_budget: int = 3_000_000
    """Transitions per reference run."""
    seeds: int = 1
    """Seeds per (candidate, env) reference run."""
    max_envs_per_library: int = 250
    """Cap of envs per library."""
    alpha: float = 0.05
    """Significance level of the Welch t-tests (ranking and curation)."""
    best_fraction: float = 0.95
    """Curation: runs whose final return is below this fraction of the best run on the env fail."""
    backend: Backend = "process"
    """Env backend for training (process, inprocess, ray, docker)."""
    runner: Runner = "local"
    """Job runner: local (process pool) or ray."""
    workers: int | None = None
    """Parallel jobs; None = the number of CPUs."""
    retries: int = 1
    """Retries of a failing job before it is recorded as failed."""
    budgets: dict[str, int] = field(default_factory=dict)
    """Per-env transition budgets overriding rank_budget and train_budget (for small CPU
    presets, where simulation speed differs by orders of magnitude between envs)."""
    min_episodes: int = 0
    """Episodes every run must finish (its streams together) before it stops: a run takes
    max(budget, the transitions of its first `min_episodes` episodes), so long-horizon envs
    give curation's t-test enough episodes (>= 20 gives >= 2 in the first 10%). 0 = off."""
    max_budget_factor: float = 4.0
    """Hard limit of a run with `min_episodes`, as a multiple of its transition budget."""

    def __post_init__(self) -> None:
        if not self.envs and not self.libraries:
            raise RefGenError("RefGenConfig needs `envs` or `libraries`")
        if self.runner not in RUNNERS:
            raise RefGenError(f"runner {self.runner!r} is not one of {RUNNERS}")
        if self.backend not in BACKEND_NAMES:
            raise RefGenError(f"backend {self.backend!r} is not one of {BACKEND_NAMES}")
        for name in (
            "rank_envs",
            "rank_budget",
            "top_n",
            "train_budget",
            "seeds",
            "max_envs_per_library",
        ):
            if getattr(self, name) < 1:
                raise RefGenError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_episodes < 0 or self.max_budget_factor < 1:
            raise RefGenError(
                f"min_episodes must be >= 0 (got {self.min_episodes}) and max_budget_factor "
                f">= 1 (got {self.max_budget_factor})"
            )
        if not 0 < self.alpha < 1 or not 0 < self.best_fraction <= 1:
            raise RefGenError("alpha must be in (0, 1) and best_fraction in (0, 1]")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RefGenConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise RefGenError(f"refgen config has unknown keys {sorted(unknown)}")
        return cls(**d)


def rank_library(lp: LibraryPlan, pool: list[Candidate], cfg: RefGenConfig, store: str,
                 progress: bool = True) -> RankingTable:  # fmt: skip
    """Run the plan's ranking jobs and rank the candidates (`ranking_table`)."""
    results = run_jobs(
        list(lp.rank_jobs),
        cfg.runner,
        cfg.workers,
        cfg.retries,
        progress,
        desc=f"rank {lp.library}",
    )
    return ranking_table(lp, pool, cfg, store, results)


def ranking_table(lp: LibraryPlan, pool: list[Candidate], cfg: RefGenConfig, store: str,
                  results: dict[str, JobResult]) -> RankingTable:  # fmt: skip
    """Points from pairwise one-tailed Welch tests on the ranking runs' final returns.

    Points are also kept per action kind: compatibility splits candidates by action kind, so
    a continuous-control env takes its references from the ranking among continuous envs
    when the library has any. Writes `<store>/refgen/ranking-<library>.json`.
    """
    if not lp.rank_jobs:
        names = {c.name for e in lp.envs for c in compatible(pool, e)[0]}
        unranked = tuple(RankedCandidate(c.name, None) for c in pool if c.name in names)
        table = RankingTable(lp.library, unranked, note=lp.ranking_note)
        table.write(store)
        return table
    jobs = list(lp.rank_jobs)
    points = {c.name: 0 for c in pool}
    by_kind: dict[str, dict[str, int]] = {}
    per_env: dict[str, dict[str, float]] = {}
    for env_id in lp.rank_envs:
        kind_points = by_kind.setdefault(action_kind(env_id), {})
        finals = {
            j.candidate["name"]: results[j.key].final_returns
            for j in jobs
            if j.env_id == env_id and results[j.key].status == "done"
        }
        per_env[env_id] = {n: float(np.mean(r)) for n, r in finals.items()}
        for n in finals:
            kind_points.setdefault(n, 0)
        for a, b in permutations(finals, 2):
            if welch_greater(finals[a], finals[b], cfg.alpha).greater:
                points[a] += 1
                kind_points[a] += 1
    tried = {j.candidate["name"] for j in jobs}
    names = [c.name for c in pool]
    order = sorted(tried, key=lambda n: (-points[n], names.index(n)))
    table = RankingTable(
        lp.library,
        tuple(RankedCandidate(n, points[n]) for n in order),
        envs=tuple(lp.rank_envs),
        ranking_by_action_kind={
            k: tuple(sorted(kp, key=lambda n: (-kp[n], names.index(n))))
            for k, kp in by_kind.items()
        },
        final_returns=per_env,
        skipped={e: lp.skipped.get(e, {}) for e in lp.rank_envs},
        failed={j.key: results[j.key].error for j in jobs if results[j.key].status == "failed"},
    )
    table.write(store)
    return table


def action_kind(env_id: str) -> str:
    from ldm.envs import env_spaces

    return env_spaces(env_id)[1].kind


def rank_and_train(
    libraries: dict[str, list[str]],
    pool: list[Candidate],
    cfg: RefGenConfig,
    store: str,
    progress: bool = True,
) -> dict[str, tuple[RankingTable, dict[str, JobResult]]]:
    """Rank every library's candidates (where there are more than N), then train the top-N of
    each ranking on every env of its library, `seeds` seeds each. The ranking jobs of all
    libraries run as one batch, then all reference jobs (workers stay busy across libraries,
    and the progress bar's estimate covers the whole phase). The jobs are the planner's
    (ldm/refgen/plan.py), so the dry run counts what this runs.

    Returns library -> (ranking table, results of its reference jobs by key)."""
    plans = {lib: plan_library(lib, envs, pool, cfg, store) for lib, envs in libraries.items()}
    ranked = run_jobs(
        [j for lp in plans.values() for j in lp.rank_jobs],
        cfg.runner, cfg.workers, cfg.retries, progress, desc="rank candidates",
    )  # fmt: skip
    tables = {lib: ranking_table(lp, pool, cfg, store, ranked) for lib, lp in plans.items()}
    refs = {
        lib: plan_library(lib, envs, pool, cfg, store, tables[lib].order())
        for lib, envs in libraries.items()
    }
    results = run_jobs(
        [j for lp in refs.values() for j in lp.train_jobs],
        cfg.runner, cfg.workers, cfg.retries, progress, desc="train references",
    )  # fmt: skip
    return {
        lib: (tables[lib], {j.key: results[j.key] for j in lp.train_jobs})
        for lib, lp in refs.items()
    }


def run_refgen(cfg: RefGenConfig, store_path: str, progress: bool = True) -> RefGenSummary:
    """The whole stage; resumable. Returns its summary (also written to <store>/refgen/summary.json)."""
    store = Store(store_path)
    pool = load_pool(cfg.pool, cfg.candidates)
    libraries: dict[str, LibraryOutcome] = {}
    references: set[str] = set()
    for library, (table, results) in rank_and_train(
        envs_by_library(cfg), pool, cfg, store_path, progress
    ).items():
        references |= {r.run_id for r in results.values() if r.status == "done" and r.run_id}
        libraries[library] = LibraryOutcome(
            tuple(table.candidates),
            table.ranking_by_action_kind,
            references=sum(r.status == "done" for r in results.values()),
            failed=tuple(k for k, r in results.items() if r.status == "failed"),
        )
    runs = store.runs()
    for run_id in runs:  # ranking runs that are nobody's reference stay, but are not trained on
        if (
            run_id not in references
            and store.open_run(run_id).meta.get("curation", {}).get("verdict") != "excluded"
        ):
            store.update_meta(
                run_id,
                {
                    "curation": {
                        "verdict": "excluded",
                        "reasons": ["ranking run of a candidate outside the library's top-N"],
                    }
                },
            )
    relabel_runs(store, references, "relabel", progress)
    verdicts: dict[str, Curation] = {}
    for env_id in sorted({runs[r].env_id for r in references}):
        verdicts.update(curate_env_references(store, env_id, references, cfg))
    fallbacks = fallback_references(store, runs, references, verdicts, cfg, progress)
    summary = RefGenSummary(
        libraries,
        {env_id: tuple(run_ids) for env_id, run_ids in fallbacks.items()},
        {rid: RunOutcome(runs[rid].env_id, verdicts[rid]) for rid in sorted(verdicts)},
    )
    summary.write(store.path)
    return summary


def relabel_runs(store: Store, run_ids: set[str], desc: str, progress: bool = True) -> None:
    """Relabel every run of `run_ids` not relabelled yet (resumable: the flag is per run)."""
    from tqdm import tqdm

    for run_id in tqdm(sorted(run_ids), desc=desc, disable=not progress):
        if not store.open_run(run_id).meta.get("relabelled"):
            relabel_run(store, run_id)


def fallback_references(
    store: Store,
    runs: dict[str, ManifestEntry],
    references: set[str],
    verdicts: dict[str, Curation],
    cfg: RefGenConfig,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Envs whose references all failed curation take their other ranking runs instead.

    A library's ranking can pick a candidate that did not learn on one of its envs (Mario's
    top-ranked PPO started high and did not improve, while A2C did). The env's ranking runs
    of the other candidates are then relabelled and curated among themselves (the failed
    runs do not set their best); those that pass become references. Updates `verdicts` and
    `references`; returns env -> the fallback runs that passed."""
    failed_envs = sorted(
        {runs[r].env_id for r in references}
        - {runs[r].env_id for r, v in verdicts.items() if v.verdict == "pass"}
    )
    found: dict[str, list[str]] = {}
    for env_id in failed_envs:
        others = {r for r, e in runs.items() if e.env_id == env_id and r not in references}
        relabel_runs(store, others, f"fallback {env_id}", progress)
        fallback = curate_env(store, env_id, cfg.alpha, cfg.best_fraction, only=others)
        verdicts.update(fallback)
        passed = sorted(r for r, v in fallback.items() if v.verdict == "pass")
        references |= set(fallback)
        if passed:
            found[env_id] = passed
    return found


def curate_env_references(
    store: Store, env_id: str, references: set[str], cfg: RefGenConfig
) -> dict[str, Curation]:
    """Curate the reference runs of one env (ranking-only runs stay excluded)."""
    return curate_env(store, env_id, cfg.alpha, cfg.best_fraction, only=references)


def print_summary(summary: RefGenSummary) -> None:
    """One line per reference run, then the ranking of each library."""
    print(f"{'verdict':<8} {'final return':>12}  run (reasons)")
    for rid, r in summary.runs.items():
        fr, verdict = r.curation.final_return, r.curation.verdict
        why = f"  ({'; '.join(r.curation.reasons)})" if r.curation.reasons else ""
        print(f"{verdict:<8} {'-' if fr is None else f'{fr:.4g}':>12}  {rid}{why}")
    for env_id, run_ids in summary.fallbacks.items():
        print(
            f"{env_id}: its references failed curation; ranking runs that passed: {list(run_ids)}"
        )
    for lib, info in summary.libraries.items():
        print(
            f"{lib}: ranking {list(info.ranking)}, {info.references} reference runs, {len(info.failed)} failed jobs"
        )
