"""What is left of a pipeline run, in minutes, from what its finished work measured.

- reference runs: the jobs the planner means less those in `<store>/refgen/jobs.json`, at the
  mean seconds of the finished ones, `workers` at once (before the first one finishes: every
  job at its auto budget's seconds cap, an upper bound; unknown with fixed budgets); with the
  stage's shared hours (`stage_hours`), the smaller of that and the hours not yet spent;
- training: the steps left at the seconds per step of `<train>/metrics.jsonl` so far.

Shown in `ldm run`'s stage banners and by `ldm status`. Owns `Left` and the two estimates.
Imports refgen's planner, `JobResult` and the stage budget's `overhead` (file reading; no env
starts); must not import torch, ldm.model, ldm.train or ldm.eval.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Left:
    """An estimate of one stage's time left."""

    stage: str
    minutes: float | None
    """None: nothing measured yet to estimate from."""
    basis: str
    """How it was estimated, in words."""

    def line(self) -> str:
        m = self.minutes
        when = "unknown" if m is None else f"~{m:.1f} min" if m < 10 else f"~{m:.0f} min"
        return f"{self.stage} left: {when} ({self.basis})"


def refgen_left(refgen: Any, store: str | Path) -> Left:
    """The reference stage's time left (`refgen`: a RefGenConfig); fallback jobs, which only
    envs whose references fail curation get, are not counted."""
    from ldm.refgen.jobs import JobResult
    from ldm.refgen.plan import plan_jobs
    from ldm.refgen.stage_budget import overhead

    planned = {j.key for j in plan_jobs(refgen, str(store))}
    path = Path(store) / "refgen" / "jobs.json"
    results = (
        [JobResult.from_dict(d) for d in json.loads(path.read_text()).values()]
        if path.exists()
        else []
    )
    finished = [r for r in results if r.status == "done" and r.job is not None]
    todo = len(planned - {r.job.key for r in finished})
    workers = min(refgen.workers or os.cpu_count() or 1, max(todo, 1))
    auto = refgen.auto_budget
    left: Left | None = None
    over = overhead(finished)  # what a job recorded before wall times cost beyond its training
    if finished:
        mean = sum(r.wall(over) for r in finished) / len(finished)
        left = Left("refgen", todo * mean / workers / 60,
                    f"{todo} of {len(planned)} jobs at {mean:.0f} s each, {workers} at once")  # fmt: skip
    elif auto is not None:
        cap = auto.max_seconds
        left = Left("refgen", todo * cap / workers / 60,
                    f"at most: {todo} jobs at the {cap:.0f} s cap, {workers} at once")  # fmt: skip
    if auto is not None and auto.stage_hours is not None and todo:
        spent = sum(r.wall(over) for r in finished if r.job.key in planned)
        share = max(0.0, auto.stage_hours * 3600 - spent / (refgen.workers or os.cpu_count() or 1))
        if left is None or left.minutes is None or share / 60 < left.minutes:
            left = Left("refgen", share / 60,
                        f"{todo} of {len(planned)} jobs sharing what is left of the stage's "
                        f"{auto.stage_hours:g} h")  # fmt: skip
    return left or Left("refgen", None, f"{todo} jobs, none finished yet")


def train_left(train_out: str | Path, steps: int) -> Left:
    """Training's time left: steps to go at the rate metrics.jsonl shows so far."""
    path = Path(train_out) / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    rows = [json.loads(x) for x in lines if x.strip()]
    # the last rows only: a resumed training's log holds the pause before it
    rows = [r for r in rows if "time" in r and "step" in r][-50:]
    if len(rows) < 2 or rows[-1]["step"] <= rows[0]["step"]:
        return Left("train", None, "no steps measured yet")
    rate = (rows[-1]["time"] - rows[0]["time"]) / (rows[-1]["step"] - rows[0]["step"])
    left = max(steps - rows[-1]["step"], 0)
    return Left("train", left * rate / 60, f"{left} of {steps} steps at {rate:.2f} s/step")
