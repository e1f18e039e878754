"""`ldm run CONFIG`: reference generation -> training -> evaluation, from one TOML file (its
format: `PipelineConfig`, ldm/pipeline/config.py).

Each stage is resumable on its own; `pipeline.json` marks finished stages, so rerunning the
same command after an interruption at any point finishes the job without redoing or
duplicating work. `--from STAGE` forgets that stage and the later ones and reruns them.

Owns: `run_pipeline` and its stages' order. Imports the pipeline's config, state and
held-out stage, and every other stage lazily inside `run_pipeline` (the config alone must
stay light for `--dry-run`); no other part imports it.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ldm.errors import ConfigError
from ldm.pipeline.config import PipelineConfig, StageConfigs
from ldm.pipeline.heldout_stage import heldout_off, heldout_stages, print_heldout, trained_envs
from ldm.pipeline.state import STAGES, PipelineState, RunSource

if TYPE_CHECKING:
    from ldm.eval.groups import Partial
    from ldm.eval.results import EvalResult, Summary


def run_pipeline(
    config_path: str | Path,
    start: str | None = None,
    progress: bool = True,
    profile: str | None = None,
    out: str | None = None,
) -> Summary:
    """Run (or resume) every stage; returns the evaluation summary."""
    from ldm.eval.scores import headline
    from ldm.pipeline.estimate import refgen_left, train_left
    from ldm.pipeline.hooks import env_evaluation
    from ldm.refgen import run_refgen
    from ldm.refgen.stage import print_summary
    from ldm.train import train

    cfg = PipelineConfig.load(config_path, profile, out)
    refgen_cfg, train_cfg, eval_cfg = cfg.stages
    state = PipelineState(cfg.out)
    if start is not None:
        if start not in STAGES:
            raise ConfigError(f"--from {start!r}: choose one of {STAGES}")
        for stage in state.clear_from(start):
            _clear_outputs(cfg, stage)
    state.set_source(RunSource(cfg.name, str(config_path), profile))

    total = 3 + (eval_cfg.unseen_seed is not None) + cfg.held_out.active
    total += cfg.held_out.adapt is not None
    if not state.done("refgen"):
        _banner(f"1/{total} reference policies", cfg, state, "refgen")
        print(refgen_left(refgen_cfg, cfg.store).line(), flush=True)
        with state.clock("refgen") as done:
            summary = run_refgen(refgen_cfg, cfg.store, progress=progress)
            print_summary(summary)
            done()
        _times(state)
    if not state.done("train"):
        _banner(f"2/{total} training the LDM", cfg, state, "train")
        print(train_left(train_cfg.out, train_cfg.steps).line(), flush=True)
        with state.clock("train") as done:
            final = train(
                train_cfg, progress=progress, evaluate=env_evaluation(train_cfg.eval_episodes)
            )
            done({"checkpoint": str(final)})
        _times(state)
    eval_dir = Path(cfg.out) / "eval"
    if not state.done("eval"):
        _banner(f"3/{total} evaluation", cfg, state, "eval")
        with state.clock("eval") as done:
            results = _evaluation_stage(cfg, cfg.stages, eval_dir, progress)
            done({"headline": headline(results.summary)})
    unseen_dir = Path(cfg.out) / "eval-unseen"
    if _unseen_due(state, eval_cfg.unseen_seed):
        _banner(f"4/{total} the LDM on seeds the run never used", cfg, state, "unseen")
        with state.clock("unseen") as done:
            unseen = _unseen_stage(cfg, (train_cfg, eval_cfg), eval_dir, unseen_dir, progress)
            done({"headline": headline(unseen.summary), "seed": str(eval_cfg.unseen_seed)})
    elif eval_cfg.unseen_seed is None and not state.done("unseen"):
        state.mark_done("unseen", 0.0, {"headline": OFF})
    heldout_stages(cfg, state, (train_cfg, eval_cfg), total, progress)
    return _print_outcome(cfg, state, eval_dir, unseen_dir)


def _print_outcome(
    cfg: PipelineConfig, state: PipelineState, eval_dir: Path, unseen_dir: Path
) -> Summary:
    """Print what the finished pipeline measured and each stage's time; returns the
    evaluation's summary."""
    from ldm.eval.results import EvalResult

    eval_cfg = cfg.stages.eval
    results = EvalResult.load(eval_dir / "results.json")
    _print_results(cfg.name, results, eval_dir)
    if eval_cfg.unseen_seed is not None:
        seed = eval_cfg.unseen_seed
        _print_results(
            f"{cfg.name}, seeds from {seed}",
            EvalResult.load(unseen_dir / "results.json"),
            unseen_dir,
        )
    print_heldout(cfg)
    for stage in STAGES:
        off = (stage == "unseen" and eval_cfg.unseen_seed is None) or heldout_off(cfg, stage)
        print(f"  {stage:<7} {'    off' if off else f'{state.seconds(stage) or 0:7.0f} s'}")
    return results.summary


def _evaluation_stage(
    cfg: PipelineConfig, stages: StageConfigs, eval_dir: Path, progress: bool
) -> EvalResult:
    """The LDM by the protocol (its results kept at once) and the references beside it, in a
    helper process (ldm/pipeline/references.py)."""
    from ldm.eval import evaluate, write_report
    from ldm.eval.heldout import attach_heldout_accuracy
    from ldm.eval.report import attach_references
    from ldm.eval.report_media import attach_reference_clips
    from ldm.eval.scores import headline
    from ldm.model import LDMPolicy
    from ldm.model.card import record_evaluation
    from ldm.pipeline import references as R

    refgen_cfg, train_cfg, eval_cfg = stages
    checkpoint = str(Path(train_cfg.out) / "final")
    planned = _planned_envs(refgen_cfg)
    env_ids = (
        [e for e in planned if not cfg.held_out.covers(e)]
        if planned and cfg.held_out.active
        else planned or trained_envs(cfg, refgen_cfg)
    )
    title = f"{cfg.name}: one LDM across {{}} envs"
    ref_dir = eval_dir / "references"
    refs = _finished(ref_dir, "references", store=cfg.store) if eval_cfg.references else None
    beside = None
    if eval_cfg.references and refs is None:
        args = (env_ids, cfg.store, eval_cfg, str(ref_dir), f"{cfg.name}: reference policies")
        beside = R.Helper(R.evaluate_references, *args)
        print("the references play by the same protocol in a helper process, beside the LDM")
    with beside or contextlib.nullcontext():
        results = _finished(eval_dir, "ldm", checkpoint=checkpoint)
        if results is None:
            policy = LDMPolicy.from_pretrained(checkpoint)
            # one core is the helper's while it runs
            with R.torch_threads(R.cores() - 1) if beside else contextlib.nullcontext():
                results = evaluate(
                    policy,
                    env_ids,
                    cfg.store,
                    eval_cfg,
                    progress=progress,
                    video_dir=eval_dir / "clips",
                    partial=_partial(eval_dir, checkpoint),
                    scorable_only=True,
                )
            results = replace(results, checkpoint=checkpoint)
            results = attach_heldout_accuracy(results, train_cfg.out)
            # the LDM's scores are kept before waiting for the references: a crash or kill
            # there reruns only the references' evaluation
            write_report(results, eval_dir, title=title.format(len(results.envs)))
            shutil.rmtree(eval_dir / "partial", ignore_errors=True)
        if beside is not None:
            if not beside.done():
                print("waiting for the references' evaluation ...", flush=True)
            refs = beside.result()
    if refs is not None:  # the references by the same protocol, beside the LDM
        results = attach_reference_clips(attach_references(results, refs), refs)
    write_report(results, eval_dir, title=title.format(len(results.envs)))
    record_evaluation(checkpoint, results, headline(results.summary))
    return results


def _planned_envs(refgen_cfg: Any) -> list[str] | None:
    """The envs the evaluation plays: the config's list, or every env a selection rule
    picked (those whose references all failed curation are played too, their reason beside
    them where a published expert score scores them; those nothing could score, without a
    run or without a reference and an expert score, are listed as failed with why, not
    played: evaluate's `scorable_only`); None: every env of the store with a reference."""
    if refgen_cfg.select is not None:
        from ldm.refgen.plan import envs_by_library

        return [e for ids in envs_by_library(refgen_cfg).values() for e in ids]
    return refgen_cfg.envs or None


OFF = "off: [eval] unseen_seed not set"
"""The unseen stage's headline when the config asks for no second evaluation."""


def _print_results(name: str, results: EvalResult, directory: Path) -> None:
    from ldm.eval.scores import headline

    print(f"\n{name}: {headline(results.summary)}")
    if results.summary_checked is not None:
        print(
            f"where the reference scores >= 80 by the protocol: {headline(results.summary_checked)}"
        )
    print(f"report: {directory / 'report.html'}  (curve: {directory / 'threshold_curve.png'})")


def _unseen_due(state: PipelineState, seed: int | None) -> bool:
    """Whether the unseen stage must (re)run: it is asked for and has not finished with this
    seed (it was off, unfinished, or ran with another seed)."""
    if seed is None:
        return False
    record = state.stage("unseen")
    return record is None or not record.done or record.summary.get("seed") != str(seed)


def _unseen_stage(
    cfg: PipelineConfig,
    stages: tuple[Any, Any],
    eval_dir: Path,
    out_dir: Path,
    progress: bool,
) -> EvalResult:
    """The LDM once more by the protocol, from the base seed `unseen_seed`, with the
    references' scores of the first evaluation beside it (the same references: the bar's
    "where the reference scores >= 80" reads the same envs)."""
    from ldm.eval import evaluate, write_report
    from ldm.eval.heldout import attach_heldout_accuracy
    from ldm.eval.report import attach_references
    from ldm.eval.results import EvalResult
    from ldm.model import LDMPolicy

    train_cfg, eval_cfg = stages
    checkpoint = str(Path(train_cfg.out) / "final")
    results = _finished(out_dir, "ldm", checkpoint=checkpoint)
    if results is None or results.config.seed != eval_cfg.unseen_seed:
        unseen_cfg = replace(eval_cfg, seed=eval_cfg.unseen_seed, unseen_seed=None, video=False)
        results = evaluate(
            LDMPolicy.from_pretrained(checkpoint),
            [e.env_id for e in EvalResult.load(eval_dir / "results.json").envs],
            cfg.store,
            unseen_cfg,
            progress=progress,
            partial=_partial(out_dir, checkpoint),
            scorable_only=True,
        )
        results = attach_heldout_accuracy(replace(results, checkpoint=checkpoint), train_cfg.out)
    refs = _finished(eval_dir / "references", "references", store=cfg.store)
    if refs is not None:
        results = attach_references(results, refs)
    write_report(results, out_dir, title=f"{cfg.name}: one LDM across {len(results.envs)} envs, "
                 f"seeds from {eval_cfg.unseen_seed}")  # fmt: skip
    shutil.rmtree(out_dir / "partial", ignore_errors=True)
    return results


def _partial(out_dir: Path, checkpoint: str) -> Partial:
    """Where an evaluation stage keeps its finished groups of envs, for this checkpoint (its
    weights file's size and modification time: a retrained model plays them again)."""
    from ldm.eval.groups import Partial

    weights = Path(checkpoint) / "model.safetensors"
    stat = weights.stat() if weights.exists() else None
    key = f"{checkpoint}:{stat.st_size}:{stat.st_mtime_ns}" if stat else checkpoint
    return Partial(Path(out_dir) / "partial", key)


def _finished(directory: Path, policy: str, **match: str) -> EvalResult | None:
    """The results an earlier attempt of the evaluation stage wrote into `directory`, when
    they are `policy`'s and their fields equal `match` (the LDM's checkpoint, the references'
    store); None otherwise. write_report writes results.json last, so its report is whole."""
    from ldm.eval.results import EvalResult

    path = directory / "results.json"
    if not path.exists():
        return None
    results = EvalResult.load(path)
    same = results.policy == policy and all(getattr(results, k) == v for k, v in match.items())
    return results if same else None


def _clear_outputs(cfg: PipelineConfig, stage: str) -> None:
    target = {
        "refgen": Path(cfg.store),
        "train": Path(cfg.out) / "train",
        "eval": Path(cfg.out) / "eval",
        "unseen": Path(cfg.out) / "eval-unseen",
        "heldout": Path(cfg.out) / "eval-heldout",
        "adapt": Path(cfg.out) / "adapt",
    }[stage]
    shutil.rmtree(target, ignore_errors=True)


def _times(state: PipelineState) -> None:
    done = {s: state.seconds(s) for s in STAGES if state.done(s)}
    print("stage times: " + ", ".join(f"{s} {v / 60:.1f} min" for s, v in done.items()), flush=True)


def _banner(text: str, cfg: PipelineConfig, state: PipelineState, stage: str) -> None:
    print(f"\n=== {cfg.name}: {text} ===", flush=True)
    spent = state.seconds(stage)
    if spent:  # an unfinished stage's earlier attempts
        print(f"(resuming: {spent / 60:.1f} min spent on it before)", flush=True)
