"""The evaluation on a Ray cluster (`EvalConfig.runner = "ray"`): the envs in shares.

`play_on_ray` splits the envs into `cfg.workers` shares (None: the cluster's CPUs), dealt
round-robin in env order, and plays each share as one Ray task with `play_local`: the share's
slots in one batch, acting with the task's own copy of the policy (sent once through Ray's
object store), its envs' workers on the task's node. An env's rollouts are seeded from its id
(`rollout_seeds`) and its slots' contexts are its own, so where it plays changes none of its
returns: results.json equals the local run's for the same seeds except the cost figures
(`seconds`; `model_calls` and `steps` are the shares' sums).

A share whose worker process dies is played again from its start by Ray on another worker
(ldm/cluster.py); past those retries its envs are reported failed with the reason and the
other shares go on. The store (reference policies) and the clips' folder must be on a
filesystem every node reads, as for refgen's Ray runner.

Owns: `play_on_ray` and its task. Imports ldm.cluster, the players and the protocol's records;
ray lazily; must not import ldm.eval.evaluate (it imports this), ldm.train or ldm.pipeline.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ldm.cluster import TASK_RETRIES, connect_ray, worker_lost
from ldm.data import Store
from ldm.errors import EvalError
from ldm.eval.config import EvalConfig
from ldm.eval.players import Played, play_local
from ldm.eval.protocol import EnvRun, ProtocolStats


def _play_share(
    policy: Any,
    runs: list[EnvRun],
    refs: dict[str, Any],
    store: str,
    cfg: EvalConfig,
    video_dir: str | None,
) -> Played:
    """One share, on whichever worker Ray chose (a fresh copy of `runs` each try)."""
    return play_local(policy, runs, refs, Store(store, create=False), cfg, False, video_dir)


def shares(runs: list[EnvRun], count: int) -> list[list[EnvRun]]:
    """The runs dealt round-robin into at most `count` non-empty shares."""
    return [s for s in (runs[i::count] for i in range(count)) if s]


def play_on_ray(
    policy: Any,
    runs: list[EnvRun],
    refs: dict[str, Any],
    store: Store,
    cfg: EvalConfig,
    progress: bool = True,
    video_dir: str | Path | None = None,
) -> Played:
    """Play `runs` in shares over the Ray cluster (see the module docstring)."""
    if not runs:
        return Played([], ProtocolStats(0, 0), {})
    ray = connect_ray(cfg.workers or 1, EvalError)
    count = cfg.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_play_share)
    policy_ref = ray.put(policy)  # one copy in the object store; each task loads its own
    local_cfg = replace(cfg, runner="local")
    clips_dir = None if video_dir is None else str(video_dir)
    pending = {}
    for share in shares(runs, count):
        ref = task.remote(
            policy_ref,
            share,
            {r.env_id: refs[r.env_id] for r in share},
            str(store.path),
            local_cfg,
            clips_dir,
        )
        pending[ref] = share
    from tqdm import tqdm

    bar = tqdm(total=len(runs), desc="eval envs (ray)", unit="env", disable=not progress)
    played, calls, steps, clips = [], 0, 0, {}
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        share = pending.pop(ref)
        try:
            out: Played = ray.get(ref)
        except Exception as e:
            if not worker_lost(e):
                raise EvalError(f"an evaluation share failed: {type(e).__name__}: {e}") from e
            reason = f"its Ray worker was lost {TASK_RETRIES + 1} times: {type(e).__name__}"
            out = Played([_lost(r, reason) for r in share], ProtocolStats(0, 0), {})
        played += out.runs
        calls += out.stats.model_calls
        steps += out.stats.steps
        clips.update(out.clips)
        bar.update(len(share))
    bar.close()
    return Played(played, ProtocolStats(calls, steps), clips)


def _lost(run: EnvRun, reason: str) -> EnvRun:
    run.error = reason
    run.returns = [[] for _ in run.seeds]
    return run
