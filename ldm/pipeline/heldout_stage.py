"""The held-out stage of `ldm run`: the LDM zero-shot on the `[heldout]` envs, by the protocol.

The evaluation stage plays the trained envs only (`trained_envs`); this stage plays the
held-out ones with the same protocol (context kept across a rollout's episodes) into
OUT/eval-heldout (results.json, report.html) and writes their in-context report there
(heldout.json: score, first and last episodes' scores, gain; the two kinds apart).

Owns the stage's functions; imports ldm.eval, ldm.model and ldm.data lazily (the pipeline's
config is read without them) and `ldm.pipeline.run._finished` (an earlier attempt's results).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ldm.errors import ConfigError

HELDOUT_OFF = "off: no [heldout] table"


def trained_envs(cfg: Any, refgen_cfg: Any) -> list[str] | None:
    """The envs the evaluation stage plays: the trained ones (None: every env of the store)."""
    held_out = cfg.held_out
    if not held_out.active:
        return refgen_cfg.envs or None
    own = [e for e in refgen_cfg.envs if not held_out.covers(e)]
    if own:  # as without the table: the config's envs
        return own
    from ldm.data import Store

    curated = {e.env_id for e in Store(cfg.store, create=False).runs(curated_only=True).values()}
    return sorted(e for e in curated if not held_out.covers(e))


def heldout_stage(cfg: Any, stages: tuple[Any, Any], progress: bool) -> Path:
    """The LDM by the protocol on the held-out envs (context kept across a rollout's
    episodes), and their in-context report: eval-heldout/results.json and heldout.json."""
    from ldm.data import Store
    from ldm.eval import evaluate, write_report
    from ldm.eval.adaptation import in_context_report
    from ldm.model import LDMPolicy
    from ldm.pipeline.run import _finished

    train_cfg, eval_cfg = stages
    held_out, out_dir = cfg.held_out, Path(cfg.out) / "eval-heldout"
    checkpoint = str(Path(train_cfg.out) / "final")
    curated = {e.env_id for e in Store(cfg.store, create=False).runs(curated_only=True).values()}
    env_ids = sorted(e for e in curated if held_out.covers(e))
    if not env_ids:
        raise ConfigError(
            f"[heldout] {held_out.exclude}: none of them has a curated reference in "
            f"{cfg.store}; the held-out stage needs their references (see `ldm status`)"
        )
    results = _finished(out_dir, "ldm", checkpoint=checkpoint)
    if results is None:
        results = evaluate(
            LDMPolicy.from_pretrained(checkpoint),
            env_ids,
            cfg.store,
            replace(eval_cfg, video=False, unseen_seed=None),
            progress=progress,
        )
        results = replace(results, checkpoint=checkpoint)
        write_report(results, out_dir, title=f"{cfg.name}: held-out envs, zero-shot")
    return in_context_report(results, held_out.kind).save(out_dir / "heldout.json")


def heldout_headline(path: Path) -> str:
    from ldm.eval.adaptation import HeldoutReport

    kinds = HeldoutReport.load(path).kinds
    return "; ".join(
        f"{k.kind}: mean score {k.mean_score if k.mean_score is None else round(k.mean_score)}"
        f" over {k.scorable} envs, in-context gain "
        f"{k.mean_gain if k.mean_gain is None else round(k.mean_gain, 1)}"
        for k in kinds
    )
