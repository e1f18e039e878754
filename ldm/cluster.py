"""Where a stage's work runs: the runner names and the connection to a Ray cluster.

Reference generation (ldm/refgen/runner.py) and the evaluation (ldm/eval/cluster.py) spread
their work with the same two runners: `local` (this machine's processes) and `ray` (a Ray
cluster: the one `RAY_ADDRESS` names, as `ray start` leaves it, else a local Ray instance).
A task whose worker process dies (a lost node, an OOM kill) is run again by Ray on another
worker, up to `TASK_RETRIES` times: every task ldm sends is safe to run twice (a reference job
discards its half-written run, an evaluation share is a pure function of its seeds).

Owns: `Runner`, `RUNNERS`, `TASK_RETRIES`, `connect_ray` and `worker_lost`. Imports ray
lazily and ldm.errors; must not import any other part of ldm.
"""

from __future__ import annotations

import os
from typing import Any, Literal, get_args

from ldm.errors import LDMError

Runner = Literal["local", "ray"]
RUNNERS: tuple[str, ...] = get_args(Runner)

#: how often Ray runs a task again after its worker process died (Ray's own default, named)
TASK_RETRIES = 3


def connect_ray(workers: int, error: type[LDMError]) -> Any:
    """The `ray` module, connected: to the cluster `RAY_ADDRESS` names, else to a local Ray
    instance of `workers` CPUs (started here); `error` when ray is not installed."""
    try:
        import ray
    except ImportError:
        raise error("runner 'ray' needs ray: pip install 'ldm[ray]'") from None
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):  # a cluster started with `ray start`
            ray.init(log_to_driver=False)
        else:  # a local Ray instance sized to the requested parallelism
            ray.init(include_dashboard=False, log_to_driver=False, num_cpus=workers)
    return ray


def worker_lost(e: BaseException) -> bool:
    """Whether a Ray error says a task's worker or node died (after Ray's own retries), as
    opposed to an error the task itself raised."""
    try:
        import ray.exceptions as rex
    except ImportError:
        return False
    lost = (rex.WorkerCrashedError, rex.NodeDiedError, rex.OutOfMemoryError, rex.ObjectLostError)
    return isinstance(e, lost)
