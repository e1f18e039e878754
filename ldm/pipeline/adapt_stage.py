"""The adapt stage of `ldm run`: the data-efficiency sweep over the held-out envs.

For each held-out env (those the held-out stage scored), each K of `[heldout.adapt] ks` and
each learner, one cell: the learner gets the env's first K reference episodes (the pretrained
LDM fine-tuned on them, the same architecture from scratch on them, or 1-NN retrieval over
them) and is scored by the protocol from the sweep's own seed (one no training used). Each
cell is written to OUT/adapt/cells/<env>__k<K>__<learner>.json, atomically, when it is
scored: a finished cell is never redone, a killed run loses at most the cell it was in (whose
training resumes from its last checkpoint). The fine-tuned cell at `forget_k` (or at the
largest K below it that the env has episodes for) also plays its model on the pretraining
envs with the evaluation stage's protocol and seeds (forgetting).
Then adapt.json, curves.png and report.html (ldm/eval/efficiency_report.py), with the verdict.

Owns the sweep's loop and its learners (`LEARNERS`: learner -> what plays). Imports ldm.eval,
ldm.train, ldm.model and ldm.data lazily (the config is read without them).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ldm.atomic import write_json_atomic
from ldm.errors import ConfigError, EvalError
from ldm.pipeline.adapt_config import AdaptConfig


@dataclass(frozen=True)
class Sweep:
    """What every cell of one sweep shares."""

    adapt: AdaptConfig
    store: str
    checkpoint: Path
    """The pretrained LDM (the pipeline's train/final)."""
    train_cfg: Any
    """The pretraining's TrainConfig (the from-scratch learner's optimizer settings)."""
    eval_cfg: Any
    """The sweep's protocol: the [eval] table's, from the sweep's seed."""
    runs: Path
    """Where the cells' models train (OUT/adapt/runs)."""


#: (policy, per_env): what `evaluate` plays; an LDMPolicy, or None and an SB3-style policy per env
Player = tuple[Any, Callable[[str], Any] | None]


def _tune_config(sweep: Sweep, env_id: str, k: int, out: Path, steps: int, lr: float) -> Any:
    from ldm.train.finetune import finetune_config

    a = sweep.adapt
    return finetune_config(
        str(sweep.checkpoint), sweep.store, [env_id], k, str(out),
        steps=steps, lr=lr, batch_size=a.batch_size,
        micro_batch=min(a.batch_size, sweep.train_cfg.micro_batch), seed=sweep.train_cfg.seed,
        checkpoint_every=max(1, steps // 4), keep_checkpoints=1, val_every=0, num_workers=0,
    )  # fmt: skip


def _finetune(sweep: Sweep, env_id: str, k: int, out: Path, parts: tuple[str, ...] = ()) -> Player:
    """The pretrained LDM fine-tuned on K episodes; with `parts`, only those parts' weights
    taken from it (the others new: an ablation of what pretraining shares)."""
    from ldm.model import LDMPolicy
    from ldm.train.loop import train

    a = sweep.adapt
    cfg = replace(
        _tune_config(sweep, env_id, k, out, a.steps, a.lr),
        lora=a.lora,
        lora_rank=a.lora_rank,
        init_parts=parts,
    )
    return LDMPolicy.from_pretrained(train(cfg, progress=False)), None


def _scratch(sweep: Sweep, env_id: str, k: int, out: Path) -> Player:
    """The pretrained LDM's architecture, window and data, from new weights."""
    from ldm.model import LDMPolicy
    from ldm.train.loop import train

    a, t = sweep.adapt, sweep.train_cfg
    steps = a.scratch_steps or a.steps
    cfg = replace(
        _tune_config(sweep, env_id, k, out, steps, a.scratch_lr or t.lr),
        init_from=None,
        warmup_steps=min(t.warmup_steps, steps // 10),
        schedule=t.schedule,
    )
    return LDMPolicy.from_pretrained(train(cfg, progress=False)), None


def _retrieval(sweep: Sweep, env_id: str, k: int, out: Path) -> Player:
    from ldm.eval.retrieval import retrieval_policy

    agent = retrieval_policy(sweep.store, env_id, k)
    return None, lambda _: agent


#: learner -> how it learns from K episodes and what then plays
LEARNERS: dict[str, Callable[[Sweep, str, int, Path], Player]] = {
    "finetune": _finetune,
    "scratch": _scratch,
    "retrieval": _retrieval,
    "finetune-backbone": lambda s, e, k, o: _finetune(s, e, k, o, ("backbone",)),
    "finetune-io": lambda s, e, k, o: _finetune(s, e, k, o, ("encoder", "head")),
}
#: settings a cell does not depend on (cells are keyed by env, K and learner): a sweep may
#: gain Ks or learners, e.g. the ablations, without its measured cells being redone
ADDITIVE_SETTINGS = ("ks", "learners")


def episodes_available(store: str, env_id: str) -> int:
    """Finished episodes in the streams training reads, over the env's curated runs."""
    from ldm.data import Store
    from ldm.data.episodes import training_streams

    opened = Store(store, create=False)
    total = 0
    for rid in opened.runs(curated_only=True, env_id=env_id):
        reader = opened.open_run(rid)
        streams = set(training_streams(reader.num_streams))
        total += sum(e.stream in streams for e in reader.meta.episodes)
    return total


def _forgetting(sweep: Sweep, policy: Any, eval_dir: Path) -> Any:
    """The fine-tuned model on the pretraining envs, by the evaluation stage's protocol and
    seeds, against the pretrained model's share >= 80% there."""
    from ldm.eval import evaluate
    from ldm.eval.efficiency import Forgetting
    from ldm.eval.results import EvalResult

    before = EvalResult.load(eval_dir / "results.json")
    cfg = replace(before.config, video=False, unseen_seed=None)
    after = evaluate(policy, [e.env_id for e in before.envs], sweep.store, cfg, progress=False)
    return Forgetting(after.summary.scorable, before.summary.share_at_80, after.summary.share_at_80)


def run_cell(sweep: Sweep, env_id: str, kind: str, k: int, learner: str, eval_dir: Path) -> Any:
    """One cell, trained (if its learner trains) and scored; not yet saved."""
    from ldm.eval import evaluate
    from ldm.eval.efficiency import Cell, cell_key

    start = time.time()
    available = episodes_available(sweep.store, env_id)
    if available < k:
        reason = f"its curated runs hold {available} finished episodes in the streams trained on"
        return Cell(env_id, kind, k, learner, None, reason)
    out = sweep.runs / cell_key(env_id, k, learner)
    policy, per_env = LEARNERS[learner](sweep, env_id, k, out)
    result = evaluate(
        policy, [env_id], sweep.store, sweep.eval_cfg, progress=False, per_env=per_env
    )
    env = result.envs[0]
    if env.status == "failed":  # a lost env is not a measurement: the rerun plays the cell again
        raise EvalError(f"{env_id}: K={k} {learner}: its env failed ({env.error}); rerun `ldm run`")
    reason = "" if env.normalised_score is not None else f"not scorable ({env.status})"
    forgetting = None
    # forgetting at `forget_k`, or at the largest K below it the env has episodes for
    forget_at = max(x for x in sweep.adapt.ks if x <= min(sweep.adapt.forgetting_k, available))
    if learner == "finetune" and sweep.adapt.forgetting and k == forget_at:
        forgetting = _forgetting(sweep, policy, eval_dir)
    if not sweep.adapt.keep_models:
        shutil.rmtree(out, ignore_errors=True)
    return Cell(
        env_id,
        kind,
        k,
        learner,
        env.normalised_score,
        reason,
        round(time.time() - start, 1),
        forgetting,
    )


def _check_settings(adapt_dir: Path, settings: dict[str, Any]) -> None:
    """The sweep's settings are written once; cells of other settings are not mixed in."""
    path = adapt_dir / "settings.json"
    settings = json.loads(json.dumps(settings))  # as the file holds them (lists, not tuples)
    settings = {k: v for k, v in settings.items() if k not in ADDITIVE_SETTINGS}
    if path.exists():
        before = {
            k: v for k, v in json.loads(path.read_text()).items() if k not in ADDITIVE_SETTINGS
        }
        if before != settings:
            changed = sorted(k for k in {*before, *settings} if before.get(k) != settings.get(k))
            raise ConfigError(
                f"{adapt_dir}: its cells were measured with other [heldout.adapt] settings "
                f"({', '.join(changed)} changed); rerun the sweep with `ldm run CONFIG --from adapt`"
            )
    else:
        write_json_atomic(path, settings)


def adapt_stage(cfg: Any, stages: tuple[Any, Any], progress: bool) -> Path:
    """Every cell not yet finished, then adapt.json, curves.png and report.html."""
    from ldm.eval.adaptation import HeldoutReport
    from ldm.eval.efficiency import Cell, EfficiencyReport, cell_key
    from ldm.eval.efficiency_report import write_efficiency_report

    train_cfg, eval_cfg = stages
    adapt: AdaptConfig = cfg.held_out.adapt
    out = Path(cfg.out)
    heldout = HeldoutReport.load(out / "eval-heldout" / "heldout.json")
    checkpoint = Path(train_cfg.out) / "final"
    rollouts = {
        "rollouts": adapt.rollouts or eval_cfg.rollouts,
        "episodes": adapt.episodes or eval_cfg.episodes,
    }
    sweep_eval = replace(eval_cfg, seed=adapt.seed, unseen_seed=None, video=False, **rollouts)
    sweep = Sweep(adapt, cfg.store, checkpoint, train_cfg, sweep_eval, out / "adapt" / "runs")
    cells_dir = out / "adapt" / "cells"
    _check_settings(out / "adapt", {**asdict(adapt), "checkpoint": str(checkpoint)})
    kinds = {e.env_id: e.kind for e in heldout.envs}
    plan = adapt.cells(sorted(kinds))
    cells = []
    for i, (env_id, k, learner) in enumerate(plan):
        path = cells_dir / f"{cell_key(env_id, k, learner)}.json"
        if path.exists():
            cells.append(Cell.from_dict(json.loads(path.read_text())))
            continue
        cell = run_cell(sweep, env_id, kinds[env_id], k, learner, out / "eval")
        cell.save(cells_dir)
        cells.append(cell)
        if progress:
            score = "-" if cell.score is None else f"{cell.score:.1f}"
            print(
                f"[{i + 1}/{len(plan)}] {env_id} K={k} {learner}: score {score} ({cell.seconds:.0f} s){' ' + cell.reason if cell.reason else ''}",
                flush=True,
            )
    zero_shot = {e.env_id: e.score for e in heldout.envs}
    report = EfficiencyReport.build(
        cells, zero_shot, adapt.ks, adapt.learners, adapt.bar_k, adapt.threshold
    )
    title = f"{cfg.name}: held-out envs, score against reference episodes"
    return write_efficiency_report(report, out / "adapt", heldout, title)["json"]


def adapt_headline(path: Path) -> str:
    from ldm.eval.efficiency import EfficiencyReport

    report = EfficiencyReport.load(path)
    return f"{len(report.cells)} cells; bar {report.verdict.why if report.verdict else '-'}"
