"""The reference stage's time, shared by its runs: each run's seconds cap set when it starts.

With `[refgen.auto_budget] stage_hours`, the stage has a wall-time budget instead of a fixed
seconds cap per run. When a job starts, it gets an equal share of what is left:

    cap = (stage_hours * 3600 * workers - wall seconds of the stage's finished jobs
           - caps of its running jobs) / jobs not started yet - a job's overhead

clamped to [`min_seconds`, `max_seconds`]; with `weights` (refgen's `refine`: a ranking
env's reference run trained again after its candidates' brief ranking runs) a job's share is
its weight over the weights of the jobs not started. A job's wall time is more than its training: its
process starts, imports its framework and starts its env workers, then plays its check and
relabels its run (~15 s a job on this 2-core VM). That overhead, measured on the finished
jobs (`wall_seconds - seconds`), is charged to every running and waiting job too, so the
stage's wall time, not only its training, fits the hours. A run the rule ends early
(CartPole learns in seconds) leaves its unused share to the runs after it, so a slow
simulator that would stop at a fixed cap gets the time the fast ones did not need, and
another pick (`select_seed`, more libraries) with more or fewer jobs fits the same hours. The finished jobs' seconds are read
from the jobs manifest, so a resumed stage counts what it spent before. Jobs the stage had
not planned (fallbacks for references that failed curation) share what is left the same
way, at `min_seconds` at least: the stage may run past its hours by that much per fallback.

The cap a job got is its `seconds_cap` (in jobs.json, not in its key: a resumed stage keeps
the runs it finished whatever their caps were); the run's stop record says whether it hit it.

Owns `StageBudget` and `overhead`. Imports ldm.refgen.jobs (types only); must not import the runner, the
planner, SB3 or later parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ldm.refgen.jobs import Job, JobResult


@dataclass
class StageBudget:
    """The stage's wall seconds and the jobs it planned; `share` is the next job's cap."""

    seconds: float
    """The stage's budget in wall seconds."""
    workers: int
    """Jobs at once: the stage has `seconds * workers` job-seconds to share."""
    planned: set[str]
    """Keys of every job the stage plans (ranking and reference jobs), started or not."""
    min_seconds: float
    max_seconds: float
    extra: set[str] = field(default_factory=set)
    """Keys of jobs given to the runner that were not planned (fallbacks)."""
    weights: dict[str, float] = field(default_factory=dict)
    """Key -> the job's weight in the shares (1 where not given)."""

    def replan(self, weights: Mapping[str, float]) -> None:
        """The jobs the stage plans now, by key with their weights: after the ranking, the
        reference jobs of its winners replace those planned in the pool's order (a planned
        job that never starts would hold a share to the end)."""
        self.planned = set(weights)
        self.weights = dict(weights)

    def share(
        self, results: Mapping[str, JobResult], running: Iterable[Job], waiting: Iterable[Job]
    ) -> float:
        """The seconds cap of the next job to start: what is left of the stage's job-seconds
        after its finished jobs (`results`: the manifest's, by key) and the caps of its
        `running` jobs, over the jobs not started yet (the planned ones without a result and
        not running, and the `waiting` ones, this one among them)."""
        running, waiting = list(running), list(waiting)
        self.extra |= {j.key for j in [*running, *waiting]} - self.planned
        mine = self.planned | self.extra
        finished = [r for k, r in results.items() if k in mine and r.status != "error"]
        over = overhead(finished)
        spent = sum(r.wall(over) for r in finished)
        busy = {j.key for j in running}
        reserved = sum((j.seconds_cap or self.max_seconds) + over for j in running)
        started = set(results) | busy
        left = {k for k in mine if k not in started} | {j.key for j in waiting}
        pool = self.seconds * self.workers - spent - reserved - over * len(left)
        weight = sum(self.weights.get(k, 1.0) for k in left) or 1.0
        share = pool * (self.weights.get(waiting[0].key, 1.0) if waiting else 1.0) / weight
        return float(min(self.max_seconds, max(self.min_seconds, share)))


def overhead(results: Iterable[JobResult]) -> float:
    """A job's seconds beyond its training, by the finished jobs that measured both
    (start-up, deterministic check, relabelling): the mean of `wall_seconds - seconds`; 0
    before any did."""
    extra = [r.wall_seconds - r.seconds for r in results if r.wall_seconds is not None]
    return max(0.0, sum(extra) / len(extra)) if extra else 0.0
