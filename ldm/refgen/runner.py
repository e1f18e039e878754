"""Job runner: a local process pool by default, Ray on a cluster; the same `run_job` in both.

A manifest (`<store>/refgen/jobs.json`, rewritten atomically after every finished job)
records finished and failed jobs by key, so rerunning after a kill -9 runs only what is left.
A failing job is retried, then recorded as failed with its error; the others go on. On Ray, a
job whose worker process dies is run again by Ray on another worker (ldm/cluster.py); past
those retries the loss counts as one failed try of the job here.

Owns: `run_jobs` and the jobs manifest (the runner names are ldm/cluster.py's, re-exported).
Imports ldm.refgen.jobs and stage_budget, ldm.atomic, ldm.cluster, ray (lazily); must not
import the planner, ldm.model or later parts.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

from ldm.atomic import write_json_atomic
from ldm.cluster import RUNNERS, TASK_RETRIES, Runner, connect_ray, worker_lost
from ldm.envs.transport.lifetime import spawn_pool, stop_pool
from ldm.errors import RefGenError
from ldm.refgen.jobs import Job, JobResult, run_job
from ldm.refgen.stage_budget import StageBudget

__all__ = ["RUNNERS", "JobManifest", "Runner", "run_jobs"]


class JobManifest:
    """`<store>/refgen/jobs.json`: job key -> `JobResult` of every finished or failed job."""

    def __init__(self, store: str | Path) -> None:
        self.path = Path(store) / "refgen" / "jobs.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.results = {key: JobResult.from_dict(d) for key, d in raw.items()}

    def done(self, job: Job) -> JobResult | None:
        result = self.results.get(job.key)
        return result if result is not None and result.status == "done" else None

    def record(self, job: Job, result: JobResult) -> None:
        self.results[job.key] = result
        write_json_atomic(self.path, {k: r.to_dict() for k, r in self.results.items()})


def _attempt(job: Job) -> JobResult:
    try:
        return run_job(job)
    except Exception as e:
        return JobResult(
            status="error",
            error=f"{type(e).__name__}: {e}",
            traceback=traceback.format_exc()[-3000:],
        )


def run_jobs(
    jobs: list[Job],
    runner: str = "local",
    workers: int | None = None,
    retries: int = 1,
    progress: bool = True,
    desc: str = "jobs",
    budget: StageBudget | None = None,
) -> dict[str, JobResult]:
    """Run jobs (skipping those the manifest says are done); returns key -> result. With a
    stage `budget`, every auto-budget job starts with its share of the stage's time left as
    its `seconds_cap`."""
    if runner not in RUNNERS:
        raise RefGenError(f"runner {runner!r} is not one of {RUNNERS}")
    if not jobs:
        return {}
    manifest = JobManifest(jobs[0].store)
    results = {j.key: manifest.done(j) for j in jobs}
    todo = [j for j in jobs if results[j.key] is None]
    tries = {j.key: 0 for j in todo}
    workers = workers or max(1, os.cpu_count() or 1)
    submit, collect, close = _backend(runner, workers)
    from tqdm import tqdm

    bar = tqdm(
        total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit="job", disable=not progress
    )
    t0, transitions, done_here = time.time(), 0, 0
    pending: dict[Any, Job] = {}
    started: dict[Any, float] = {}  # each running job's start, for its wall_seconds
    queue = list(todo)
    finished = False
    try:
        while queue or pending:
            while queue and len(pending) < workers:
                job = queue.pop(0)
                if budget is not None and job.auto is not None:
                    cap = budget.share(manifest.results, pending.values(), [job, *queue])
                    job = replace(job, seconds_cap=round(cap, 1))
                tries[job.key] += 1
                fut = submit(job)
                pending[fut], started[fut] = job, time.time()
            for fut in collect(list(pending)):
                job = pending.pop(fut)
                out = fut.result() if isinstance(fut, Future) else _ray_get(fut)
                out = replace(out, wall_seconds=round(time.time() - started.pop(fut), 2))
                if out.status == "error" and tries[job.key] <= retries:
                    queue.append(job)
                    continue
                if out.status == "error":
                    out = replace(out, status="failed", tries=tries[job.key])
                else:
                    transitions += out.transitions
                manifest.record(job, out)
                results[job.key] = out
                bar.update()
                done_here += 1
                bar.set_postfix_str(_eta(time.time() - t0, transitions, done_here, queue,
                                         pending, workers))  # fmt: skip
        finished = True
    finally:
        bar.close()
        close(not finished)  # interrupted: stop the running jobs too (the rerun redoes them)
    return results


def _eta(elapsed: float, transitions: int, done: int, queue: list[Job],
         pending: dict[Any, Job], workers: int) -> str:  # fmt: skip
    """The bar's postfix: transitions/s and the time left. Jobs with a fixed budget are timed
    by the transitions/s so far; a job whose length an auto budget decides (its budget is only
    its cap: timing it by its budget overstated a wide run's time left 10-fold) by the wall
    time each job finished so far took on its worker, start-up included."""
    rate = transitions / max(1e-9, elapsed)
    per_job = elapsed * min(workers, done) / max(1, done)  # one worker's seconds per job
    left = sum(
        per_job if j.auto is not None else (j.budget * workers / rate if rate else float("nan"))
        for j in [*queue, *pending.values()]
    )
    return f"{rate:,.0f} transitions/s, ~{left / workers / 60:.0f} min left"


def _ray_get(ref: Any) -> JobResult:
    """The job's result; a worker lost past Ray's retries is one failed try of the job."""
    import ray

    try:
        return ray.get(ref)
    except Exception as e:
        if not worker_lost(e):
            raise
        return JobResult(status="error", error=f"{type(e).__name__}: {str(e)[:2000]}")


def _backend(runner: str, workers: int) -> tuple[Callable, Callable, Callable]:
    if runner == "local":
        pool = spawn_pool(workers)

        def collect(futs: list) -> list:
            done, _ = wait(futs, return_when=FIRST_COMPLETED)
            return list(done)

        # aborted: a job process left running would go on writing into the store
        close = lambda abort: stop_pool(pool, abort)  # noqa: E731
        return (lambda job: pool.submit(_attempt, job)), collect, close
    ray = connect_ray(workers, RefGenError)
    # a job whose worker dies runs again elsewhere: its run id is its key's, so the retry
    # discards the half-written pending run and the store holds the run once
    remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_attempt)

    def collect_ray(refs: list) -> list:
        ready, _ = ray.wait(refs, num_returns=1)
        return ready

    return (lambda job: remote.remote(job)), collect_ray, (lambda abort: None)
