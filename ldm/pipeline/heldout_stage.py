"""The held-out stages of `ldm run`: the LDM zero-shot on the `[heldout]` envs, then the
data-efficiency sweep (`[heldout.adapt]`, ldm/pipeline/adapt_stage.py).

The evaluation stage plays the trained envs only (`trained_envs`); the held-out stage plays
the held-out ones with the same protocol (context kept across a rollout's episodes) into
OUT/eval-heldout (results.json, report.html with the held-out table) and writes their
in-context report there (heldout.json: score, first and last episodes' scores, gain; the two
kinds apart). `heldout_stages` runs both stages in `ldm run`, each marked done when finished.

Owns the stages' functions; imports ldm.eval, ldm.model and ldm.data lazily (the pipeline's
config is read without them) and `ldm.pipeline.run` (an earlier attempt's results, banners).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ldm.errors import ConfigError

HELDOUT_OFF = "off: no [heldout] table"
ADAPT_OFF = "off: no [heldout.adapt] table"


def heldout_off(cfg: Any, stage: str) -> bool:
    """Whether `stage` is a held-out stage the config does not ask for."""
    return (stage == "heldout" and not cfg.held_out.active) or (
        stage == "adapt" and cfg.held_out.adapt is None
    )


def heldout_stages(
    cfg: Any, state: Any, stages: tuple[Any, Any], total: int, progress: bool
) -> None:
    """The held-out stage, then the adapt stage, where the config has them and they are not
    done (an unasked one is marked done as off)."""
    from ldm.pipeline.adapt_stage import adapt_headline, adapt_stage
    from ldm.pipeline.run import _banner

    if not state.done("heldout"):
        if not cfg.held_out.active:
            state.mark_done("heldout", 0.0, {"headline": HELDOUT_OFF})
        else:
            n = total - (cfg.held_out.adapt is not None)
            _banner(f"{n}/{total} held-out envs, zero-shot", cfg, state, "heldout")
            with state.clock("heldout") as done:
                done({"headline": heldout_headline(heldout_stage(cfg, stages, progress))})
    if not state.done("adapt"):
        if cfg.held_out.adapt is None:
            state.mark_done("adapt", 0.0, {"headline": ADAPT_OFF})
        else:
            text = f"{total}/{total} held-out envs, score against K reference episodes"
            _banner(text, cfg, state, "adapt")
            with state.clock("adapt") as done:
                done({"headline": adapt_headline(adapt_stage(cfg, stages, progress))})


def print_heldout(cfg: Any) -> None:
    """The held-out table and the sweep's table, at the end of `ldm run`."""
    from ldm.eval.adaptation import HeldoutReport
    from ldm.eval.efficiency import EfficiencyReport

    out = Path(cfg.out)
    if cfg.held_out.active:
        print(f"\nheld-out envs, zero-shot ({out / 'eval-heldout' / 'report.html'}):")
        print(HeldoutReport.load(out / "eval-heldout" / "heldout.json").table())
    if cfg.held_out.adapt is not None:
        print(
            f"\nheld-out envs, score against K reference episodes ({out / 'adapt' / 'report.html'}):"
        )
        print(EfficiencyReport.load(out / "adapt" / "adapt.json").table())


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
    from ldm.eval.efficiency_report import heldout_section
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
    report = in_context_report(results, held_out.kind)
    title = f"{cfg.name}: held-out envs, zero-shot"
    write_report(results, out_dir, title=title, sections=heldout_section(report))
    return report.save(out_dir / "heldout.json")


def heldout_headline(path: Path) -> str:
    from ldm.eval.adaptation import HeldoutReport

    kinds = HeldoutReport.load(path).kinds
    return "; ".join(
        f"{k.kind}: median score {_round(k.median_score)} over {k.scorable} envs, "
        f"in-context gain {_round(k.median_gain, 1)}"
        for k in kinds
    )


def _round(x: float | None, digits: int | None = None) -> float | None:
    return None if x is None else round(x, digits)
