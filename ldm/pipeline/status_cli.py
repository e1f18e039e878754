"""`ldm status DIR|CONFIG`: where a pipeline stands (stages done, jobs, checkpoints, headline),
given its output directory or the pipeline config (.toml) whose `out` it is.

Owns: the status printout, one detail function per stage, and the estimates of what is left
(ldm/pipeline/estimate.py, from the config that ran there). Imports ldm.pipeline.state,
`out_dir` of ldm.pipeline.config, refgen's `JobResult` record and config (inside `main`);
must not import torch or the model (status reads files).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tyro

from ldm.pipeline.state import STAGES, PipelineState


def _refgen_detail(out: Path, state: PipelineState) -> str:
    from ldm.refgen.jobs import JobResult

    jobs = out / "store" / "refgen" / "jobs.json"
    if not jobs.exists():
        return ""
    results = [JobResult.from_dict(d) for d in json.loads(jobs.read_text()).values()]
    done = sum(r.status == "done" for r in results)
    stops = Counter(r.stop.reason for r in results if r.stop is not None)
    why = f"; stopped: {', '.join(f'{k} {n}' for k, n in stops.most_common())}" if stops else ""
    return f"{done} jobs done, {sum(r.status == 'failed' for r in results)} failed{why}"


def _train_detail(out: Path, state: PipelineState) -> str:
    ckpts = sorted((out / "train" / "checkpoints").glob("step-*"))
    return f"latest checkpoint {ckpts[-1].name}" if ckpts else ""


def _eval_detail_of(stage: str) -> Callable[[Path, PipelineState], str]:
    """The detail of a stage whose record holds a headline."""

    def detail(out: Path, state: PipelineState) -> str:
        record = state.stage(stage)
        return record.summary.get("headline", "") if record is not None and record.done else ""

    return detail


_eval_detail = _eval_detail_of("eval")


def _unseen_detail(out: Path, state: PipelineState) -> str:
    record = state.stage("unseen")
    if record is None or not record.done:
        return ""
    seed = record.summary.get("seed")
    return (
        f"seeds from {seed}: {record.summary.get('headline', '')}"
        if seed
        else record.summary.get("headline", "")
    )


def _adapt_detail(out: Path, state: PipelineState) -> str:
    """The sweep's headline when done, else how many of its cells are finished."""
    record = state.stage("adapt")
    if record is not None and record.done:
        return record.summary.get("headline", "")
    cells = list((out / "adapt" / "cells").glob("*.json"))
    return f"{len(cells)} cells finished" if cells else ""


#: stage -> what the status line shows beside it (jobs, newest checkpoint, headline)
DETAILS: dict[str, Callable[[Path, PipelineState], str]] = {
    "refgen": _refgen_detail,
    "train": _train_detail,
    "eval": _eval_detail,
    "unseen": _unseen_detail,
    "heldout": _eval_detail_of("heldout"),
    "adapt": _adapt_detail,
}


def main(out: tyro.conf.Positional[str], profile: str | None = None) -> int:
    """Show the stages of a pipeline output directory and their progress.

    Args:
        out: The pipeline's `out` directory, or its config (a .toml file: its `out` is shown).
        profile: With a config, the profile whose `out` to show (as `ldm run --profile`); with
            either, the profile whose jobs the estimates count where the run did not record
            its own (runs before 2026-12-07).
    """
    d = Path(out)
    if d.suffix == ".toml" or d.is_file():
        from ldm.pipeline.config import out_dir

        d = out_dir(d, profile)
    if not (d / "pipeline.json").exists():
        print(f"{d}: no pipeline has run here (no pipeline.json)")
        return 1
    state = PipelineState(d)
    print(f"pipeline {state.source.name if state.source else '?'} in {d}")
    for stage in STAGES:
        mark = "done" if state.done(stage) else "todo"
        secs = state.seconds(stage)
        extra = DETAILS[stage](d, state)
        print(f"  {stage:<7} {mark:<5} {'' if secs is None else f'{secs:6.0f} s'}  {extra}")
    for left in _left(d, state, profile):
        print(f"  {left.line()}")
    return 0


def _left(out: Path, state: PipelineState, profile: str | None = None) -> list[Any]:
    """Estimates of the unfinished reference and training stages (ldm/pipeline/estimate.py),
    from the config that ran here, with the profile it ran with (its record's, else
    `profile`): a profile's jobs are other jobs (`--profile auto`: other candidates, keys by
    rule), and the base config's would count none of them done."""
    from ldm.pipeline.config import PipelineConfig
    from ldm.pipeline.estimate import refgen_left, train_left

    source = Path(state.source.path) if state.source and state.source.path else None
    if source is None or not source.exists():
        return []
    refgen, train, _ = PipelineConfig.load(source, state.source.profile or profile).stages
    out_left = []
    if not state.done("refgen") and (refgen.envs or refgen.select is not None):
        out_left.append(refgen_left(refgen, out / "store"))
    if not state.done("train"):
        out_left.append(train_left(out / "train", train.steps))
    return out_left
