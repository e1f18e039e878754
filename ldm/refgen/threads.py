"""One compute thread per job, for the framework its candidate trains with.

Jobs run side by side, one per core: a job whose framework spreads its math over every core
slows the others down more than it gains. torch has a setting for it. JAX has none that
works on its CPU client today: `--xla_cpu_multi_thread_eigen=false` only reaches Eigen's
pool (older XLA), and the CPU client sizes its intra-op thread pool from the CPUs the process
may run on when the client starts (measured with jax 0.10 on this 2-core VM: four threads
shared a jitted matmul loop with and without the flag, one with the trick below). So the job
lets its main thread run on one CPU while it starts JAX's CPU client, then gives every thread
of the process its CPUs back: the pool holds one thread, and that thread may run on any core.

Owns: `one_compute_thread` and the per-framework table. Imports torch and jax inside the
functions (a job imports only what it trains with); must not import ldm.envs, ldm.data or
the algorithms.
"""

from __future__ import annotations

import os
from collections.abc import Callable

#: XLA flags of a one-thread job (Eigen's pool, where XLA still has one)
XLA_ONE_THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=false",)
_started: set[str] = set()


def _torch() -> None:
    import torch

    torch.set_num_threads(1)


def _jax() -> None:
    """Start JAX's CPU client with a one-thread pool (once a process: the client lives on)."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    os.environ["XLA_FLAGS"] = " ".join(flags + [f for f in XLA_ONE_THREAD_FLAGS if f not in flags])
    # the job trains on the CPU, as torch's jobs do (device="cpu"), also where a GPU build is
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if "jax" in _started:
        return
    import jax

    if not hasattr(os, "sched_setaffinity"):  # macOS: no affinity; the pool takes every core
        jax.devices()
        _started.add("jax")
        return
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        jax.devices()  # starts the client: its threads inherit the one-CPU set
    finally:
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:  # a thread that ended meanwhile
                pass
    _started.add("jax")


#: framework -> what gives a job one compute thread of it; torch is always set (SB3's base
#: classes, which sbx's build on, import it)
ONE_THREAD: dict[str, Callable[[], None]] = {"torch": _torch, "jax": _jax}


def one_compute_thread(framework: str) -> None:
    """Give this process one compute thread in torch and in `framework` (torch or jax);
    call it before the framework runs any computation."""
    _torch()
    ONE_THREAD[framework]()
