"""One job = train one candidate on one env with one seed, recording into the store.

`run_job` is a plain top-level function of a plain dataclass, so the local process pool and
Ray run exactly the same code. The run id is derived from the job key: a rerun after a crash
discards the job's half-written pending run and never duplicates a committed one.

Owns: `Job`, `JobResult` (an entry of jobs.json), `run_job` and the job's run id. Imports
the candidate record, the autobudget records, refgen's stopping callbacks and thread setting inside `run_job`, ldm.envs' backend names, and stable_baselines3, torch (through SB3), the
hub, ldm.data and ldm.refgen.curate's relabelling inside `run_job`; must not import ldm.model,
ldm.train, ldm.eval or ldm.pipeline.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ldm.disk import on_full_disk
from ldm.envs import Backend
from ldm.errors import RefGenError, known_keys
from ldm.refgen.autobudget import AutoBudget, StopRecord
from ldm.refgen.candidates import Candidate

JobPhase = Literal["rank", "train"]


@dataclass(frozen=True)
class Job:
    """Train `candidate` on `env_id` for `budget` transitions with `seed`; record it.

    With `min_episodes`, the run goes on after `budget` transitions until its streams together
    have finished that many episodes (curation's t-test needs >= 2 in the first 10%), but
    never past `max_budget` transitions: long-horizon envs get episodes, not just steps."""

    phase: JobPhase
    """rank: a ranking run (its seed 0 may also serve as a reference); train: a reference run."""
    env_id: str
    library: str
    candidate: Candidate
    budget: int
    seed: int
    store: str
    backend: Backend = "process"
    record: bool = True
    min_episodes: int = 0
    """Episodes (all streams together) the run must finish before it stops; 0 = none."""
    max_budget: int = 0
    """Hard limit in transitions when `min_episodes` keeps a run going (0 = `budget`)."""
    check_episodes: int = 0
    """Episodes the final policy plays deterministically after training (the run's
    `check_returns`, read by curation; ldm/refgen/check.py); 0 = no check."""
    auto: AutoBudget | None = None
    """The AutoRL rule that ends the run (ldm/refgen/autobudget.py); `budget` is then its cap
    in transitions. None: a fixed budget."""
    seconds_cap: float | None = None
    """With `auto`: the run's share of the stage's hours, set by the runner when the job
    starts (ldm/refgen/stage_budget.py); below the rule's `max_seconds`, it is the run's cap.
    Not in the key."""

    def __post_init__(self) -> None:
        if self.budget < 1 or self.min_episodes < 0 or self.check_episodes < 0:
            raise RefGenError(
                f"job {self.key}: budget must be >= 1, min_episodes and check_episodes >= 0"
            )
        if self.auto is not None and (
            self.min_episodes or self.budget != self.auto.max_transitions
        ):
            raise RefGenError(
                f"job {self.key}: a job with an auto budget takes its cap ({self.auto.max_transitions}) "
                f"as its budget and its rule's min_episodes, not budget {self.budget} and "
                f"min_episodes {self.min_episodes}"
            )
        if self.max_budget and self.max_budget < self.budget:
            raise RefGenError(
                f"job {self.key}: max_budget {self.max_budget} is below the budget {self.budget}"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        """A job as jobs.json holds it (`asdict`: its candidate a dict)."""
        known_keys(cls, d, "job in jobs.json", RefGenError)
        auto = d.get("auto")
        return cls(
            **{
                **d,
                "candidate": Candidate.from_dict(d["candidate"]),
                "auto": AutoBudget.from_dict(auto) if isinstance(auto, dict) else auto,
            }
        )

    @property
    def key(self) -> str:
        key = f"{self.phase}:{self.candidate.name}:{self.env_id}:{self.seed}:{self.budget}"
        # keys of plain transition budgets stay what they were (stores resume across versions)
        if self.auto is not None:
            return key + f":auto-{self.auto.tag}"
        return key + (f":e{self.min_episodes}-{self.max_budget}" if self.min_episodes else "")

    @property
    def limit(self) -> int:
        """The most transitions the run may take."""
        return max(self.budget, self.max_budget) if self.min_episodes else self.budget

    @property
    def run_id(self) -> str:
        h = hashlib.sha256(self.key.encode()).hexdigest()[:10]
        return f"{self.env_id.replace('/', '__')}-{self.candidate.name}-s{self.seed}-{h}"


def policy_path(store: str | Path, run_id: str) -> Path:
    return Path(store) / "policies" / f"{run_id}.zip"


def run_job(job: Job) -> JobResult:
    """Train, record and save the final policy; returns a summary (also for failed NaN runs).

    The run's metadata keeps where its wall time went (`time_split`, seconds): `env` (waiting
    on the envs), `record` (writing transitions), `learner` (the rest of training: acting,
    gradient steps, and for JAX candidates their jit compilation), `check` (the deterministic
    play) and `relabel`; `train_seconds` is the training's (env, record and learner), `cpu`
    the job process's CPU seconds in it (the env workers' not included). Why the run stopped
    is its `stop` record (`ldm.refgen.autobudget.StopRecord`)."""
    from ldm.data import Store
    from ldm.envs import env_spaces
    from ldm.refgen.threads import one_compute_thread

    cand = job.candidate
    one_compute_thread(cand.framework)  # before the framework computes anything
    store = Store(job.store)
    obs_spec, act_spec = env_spaces(job.env_id)
    ok, policy = cand.compatible(obs_spec, act_spec)
    if not ok:
        raise RefGenError(f"{cand.name} cannot run on {job.env_id}: {policy}")
    if job.run_id in store.runs():  # committed by an earlier attempt that died before the manifest
        meta = store.open_run(job.run_id).meta
        return _summary(job, meta.episode_returns, meta.transitions, meta.extra.get("stop"), 0.0)
    if job.run_id in store.pending():
        store.discard_run(job.run_id)
    # the run uncompressed (obs, actions, reference actions, reward, two flags): an upper bound
    needed = job.limit * (_step_bytes(obs_spec) + 2 * _step_bytes(act_spec) + 6)
    kept = "the runs already committed are kept; rerun the stage and this job runs again"
    with on_full_disk(job.store, needed, f"run {job.run_id}", kept):
        writer = None
        if job.record:
            writer = store.create_run(
                job.env_id,
                job.library,
                obs_spec,
                act_spec,
                cand.n_envs,
                {
                    "algorithm": cand.algo,
                    "candidate": cand.name,
                    "config": cand.kwargs,
                    "seed": job.seed,
                    "budget": job.budget,
                    "phase": job.phase,
                    "policy": policy,
                },
                run_id=job.run_id,
            )
        return _train(job, store, writer, policy)


def _train(job: Job, store: Any, writer: Any, policy: str) -> JobResult:
    """Train the candidate on its recording vector env until its stop rule ends it, then keep
    the run (`_keep`); a failure aborts the half-written run and its policy file."""
    import torch

    from ldm.envs import default_step_limit_kwargs, sb3_vec_env
    from ldm.refgen.candidates import buffer_within_run
    from ldm.refgen.record import RecordingVecEnv
    from ldm.refgen.stopping import auto_callback, budget_callback

    cand = job.candidate
    t0, cpu0 = time.time(), time.process_time()
    default = job.auto.default_step_limit if job.auto is not None else None
    venv = RecordingVecEnv(
        sb3_vec_env(job.env_id, cand.n_envs, backend=job.backend, workers=1,
                    **default_step_limit_kwargs(default)),
        writer,
        step_limit=default,
    )  # fmt: skip
    # torch.distributions checks every distribution's arguments by default: ~8% of a PPO
    # update of a small MLP here; SB3's own tensors need no check (restored after the job)
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        venv.seed(job.seed)
        algo = cand.algorithm_class()
        kwargs = buffer_within_run(algo, cand.constructor_kwargs(), job.limit)
        model = algo(policy, venv, seed=job.seed, device="cpu", verbose=0, **kwargs)
        # a logger with no outputs: SB3's default makes an empty /tmp/SB3-<time> dir per job
        from stable_baselines3.common.logger import Logger

        model.set_logger(Logger(folder=None, output_formats=[]))
        stopper = (
            auto_callback(job.auto.capped(job.seconds_cap), venv.episode_returns)
            if job.auto is not None
            else budget_callback(job, venv.episode_returns)
        )
        model.learn(total_timesteps=job.limit, callback=stopper)
        stop = stopper.stop_record()
        venv.finish()  # the last transition into the writer before it is read and committed
        learned = time.time() - t0
        if not venv.episode_returns:
            raise RefGenError(
                f"{job.env_id}: no episode finished within {stop.transitions} transitions "
                f"(stopped: {stop.reason}); raise the budget or declare a time limit for the env"
            )
        split = {
            "env": venv.env_seconds,
            "record": venv.record_seconds,
            "learner": learned - venv.env_seconds - venv.record_seconds,
            # this process's CPU seconds over the same span, every thread's: on a shared
            # machine the wall seconds above carry other processes' load, these less so
            "cpu": time.process_time() - cpu0,
        }
        if writer is None:
            return _summary(job, venv.episode_returns, job.budget, stop.to_dict(), learned)
        # the default limit cut its episodes: the check and the evaluation play under it too
        cut = (
            {"step_limit": default, "cut_episodes": venv.cut_episodes} if venv.cut_episodes else {}
        )
        return _keep(job, store, writer, model, split, learned, stop, cut)
    except BaseException:
        if writer is not None and not writer.closed:
            writer.abort()
        policy_path(job.store, job.run_id).with_suffix(".tmp.zip").unlink(missing_ok=True)
        raise
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
        venv.close()


def _keep(
    job: Job,
    store: Any,
    writer: Any,
    model: Any,
    split: dict[str, float],
    seconds: float,
    stop: StopRecord,
    cut: dict[str, int] | None = None,
) -> JobResult:
    """Check, save and commit a trained run, then relabel it by the model in memory. `cut`:
    the default step limit that cut its episodes and how many (kept in its meta)."""
    t0 = time.time()
    checked: dict[str, Any] = dict(cut or {})
    if job.check_episodes:
        from ldm.refgen.check import play_deterministic

        # the writer records every finished episode's length: the check's step bound
        longest = max(e.length for e in writer.episodes)
        checked["check_returns"] = play_deterministic(
            model, job.env_id, job.check_episodes, job.seed, longest, job.backend,
            step_limit=checked.get("step_limit"),
        )  # fmt: skip
    split["check"] = time.time() - t0
    path = policy_path(job.store, job.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path.with_suffix(".tmp.zip")))
    path.with_suffix(".tmp.zip").replace(path)
    writer.commit(
        {
            "train_seconds": seconds,
            "policy_file": str(path.relative_to(job.store)),
            "stop": stop.to_dict(),
            **checked,
        }
    )
    # relabelled here, by the model in memory, in parallel with the other jobs: the stage
    # would load every policy again, one run after another (~1-2 s each here); a job killed
    # before this leaves the run unrelabelled and the stage does it
    from ldm.refgen.curate import relabel_run

    t0 = time.time()
    relabel_run(store, job.run_id, model=model)
    split["relabel"] = time.time() - t0
    meta = store.update_meta(job.run_id, {"time_split": {k: round(v, 3) for k, v in split.items()}})
    return _summary(job, meta.episode_returns, meta.transitions, meta.extra.get("stop"), seconds)


def _step_bytes(spec: Any) -> int:
    """Bytes one step of a column of this space takes uncompressed."""
    from ldm.data.columns import column_dtype, column_shape

    return int(np.prod(column_shape(spec))) * column_dtype(spec).itemsize


#: done: the run finished; failed: every try raised (the last error kept); error: one try
#: raised and the runner may try again (never written to jobs.json)
JobStatus = Literal["done", "failed", "error"]


@dataclass(frozen=True)
class JobResult:
    """What a job left: its run and the returns curation and ranking use, or why it failed.
    One entry of `<store>/refgen/jobs.json` (`to_dict` / `from_dict`, the file's form)."""

    status: JobStatus
    job: Job | None = None
    run_id: str | None = None
    """The recorded run (None for a job that records nothing, or failed)."""
    final_returns: tuple[float, ...] = ()
    """Returns of the last 10% of the run's episodes."""
    first_returns: tuple[float, ...] = ()
    episodes: int = 0
    seconds: float = 0.0
    transitions: int = 0
    error: str | None = None
    traceback: str | None = None
    tries: int | None = None
    stop: StopRecord | None = None
    """Why the run stopped (None: recorded before runs said so)."""
    wall_seconds: float | None = None
    """The job's wall time on its worker as the runner saw it, start-up (process, imports,
    env workers), check and relabelling included; `seconds` is its training's (None:
    recorded before runs said so)."""

    def wall(self, overhead: float = 0.0) -> float:
        """The job's wall seconds: `wall_seconds`, or for a job recorded before jobs measured
        it, its training's `seconds` plus `overhead` (the stage's measured per-job extra)."""
        return self.wall_seconds if self.wall_seconds is not None else self.seconds + overhead

    def to_dict(self) -> dict[str, Any]:
        if self.status != "done":
            d: dict[str, Any] = {"status": self.status, "error": self.error}
            d["traceback"] = self.traceback
            return d if self.tries is None else {**d, "tries": self.tries}
        return {
            "status": "done",
            "job": _job_dict(self.job) if self.job is not None else None,
            "run_id": self.run_id,
            "final_returns": list(self.final_returns),
            "first_returns": list(self.first_returns),
            "episodes": self.episodes,
            "seconds": self.seconds,
            "transitions": self.transitions,
            **({"stop": self.stop.to_dict()} if self.stop is not None else {}),
            **({"wall_seconds": self.wall_seconds} if self.wall_seconds is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobResult:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise RefGenError(f"job result has unknown keys {sorted(unknown)} (jobs.json)")
        job = d.get("job")
        return cls(
            **{
                **d,
                "job": Job.from_dict(job) if isinstance(job, dict) else job,
                "stop": StopRecord.from_dict(d["stop"]) if d.get("stop") else None,
                "final_returns": tuple(d.get("final_returns", ())),
                "first_returns": tuple(d.get("first_returns", ())),
            }
        )


def _job_dict(job: Job) -> dict[str, Any]:
    """A job as jobs.json holds it; an unchecked job's entry is what it was before jobs had
    checks (files written by earlier versions stay the same when a stage resumes)."""
    d = asdict(job)
    for key in ("check_episodes", "auto", "seconds_cap"):
        if not d[key]:
            del d[key]
    return d


def _summary(
    job: Job, returns: Any, transitions: int, stop: dict[str, Any] | None, seconds: float
) -> JobResult:
    """A done job's result: its run's episode returns and transitions (the budget where it
    recorded no run) and why it stopped (`StopRecord`'s dict)."""
    from ldm.data.anchors import split_tenths

    returns = np.asarray(returns, dtype=np.float64)
    first, last = split_tenths(returns)
    return JobResult(
        status="done",
        job=job,
        run_id=job.run_id if job.record else None,
        final_returns=tuple(last.tolist()),
        first_returns=tuple(first.tolist()),
        episodes=int(returns.size),
        seconds=seconds,
        transitions=int(transitions),
        stop=StopRecord.from_dict(stop) if stop else None,
    )
