"""`ldm status DIR`: where a pipeline stands (stages done, jobs, checkpoints, headline).

Owns: the status printout, one detail function per stage. Imports ldm.pipeline.state and
refgen's `JobResult` record (inside `main`); must not import torch, the model or the envs
(status reads files).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import tyro

from ldm.pipeline.state import STAGES, PipelineState


def _refgen_detail(out: Path, state: PipelineState) -> str:
    from ldm.refgen.jobs import JobResult

    jobs = out / "store" / "refgen" / "jobs.json"
    if not jobs.exists():
        return ""
    results = [JobResult.from_dict(d) for d in json.loads(jobs.read_text()).values()]
    done = sum(r.status == "done" for r in results)
    return f"{done} jobs done, {sum(r.status == 'failed' for r in results)} failed"


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


#: stage -> what the status line shows beside it (jobs, newest checkpoint, headline)
DETAILS: dict[str, Callable[[Path, PipelineState], str]] = {
    "refgen": _refgen_detail,
    "train": _train_detail,
    "eval": _eval_detail,
    "unseen": _unseen_detail,
    "heldout": _eval_detail_of("heldout"),
}


def main(out: tyro.conf.Positional[str]) -> int:
    """Show the stages of a pipeline output directory and their progress.

    Args:
        out: The pipeline's `out` directory.
    """
    d = Path(out)
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
    return 0
