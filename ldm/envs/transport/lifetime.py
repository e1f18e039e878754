"""Process lifetime: what a client forgot is closed at exit, and helper processes die with
the process that started them.

A script that never calls `close()` must exit normally and leave no worker, scratch directory
or Ray actor behind. `track(conn)` (called by every process and Ray connection) keeps a weak
reference; an `atexit` hook closes what is still open. It runs before the interpreter freezes
its daemon threads, so no worker is left to a `__del__` at shutdown. A forked child that
exits normally leaves its parent's connections alone. `spawn_pool` makes ldm's process pools
(reference jobs, the references' evaluation): spawned processes that the kernel stops when
their parent dies, even by SIGKILL (`die_with_parent`); `stop_pool` ends one, its running
work too when asked.

This module imports only the standard library.
"""

from __future__ import annotations

import atexit
import os
import weakref
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_ATEXIT_REGISTERED = False


def track(conn: Any) -> None:
    """Close `conn` at interpreter exit if its owner has not: a script that forgets `close()`
    exits normally and leaves no worker or scratch dir behind. The hook is registered on the
    first connection, i.e. after Ray's own (atexit runs last-in first-out), so Ray actors are
    closed while Ray is still up."""
    global _ATEXIT_REGISTERED
    _LIVE.add(conn)
    conn.owner_pid = os.getpid()
    if not _ATEXIT_REGISTERED:
        atexit.register(close_all)
        _ATEXIT_REGISTERED = True


def close_all() -> None:
    """Close every connection still open (runs at exit, before daemon threads are frozen).
    A forked child that exits normally leaves its parent's connections alone."""
    for conn in list(_LIVE):
        if getattr(conn, "owner_pid", None) != os.getpid():
            continue
        try:
            conn.close()
        except Exception:  # noqa: BLE001 (at exit: close the others whatever one raises)
            pass


def die_with_parent(parent: int) -> None:
    """Process initializer: on Linux the kernel sends this process SIGTERM when `parent` (the
    `ldm` process that started it) dies, even by SIGKILL, so no helper works on unseen (its
    env workers follow it). Elsewhere a no-op: the parent's own clean-up still applies."""
    import signal

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that die with this one (`die_with_parent`)."""
    import multiprocessing as mp

    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def stop_pool(pool: ProcessPoolExecutor, abort: bool) -> None:
    """Shut `pool` down and wait for its processes; with `abort`, they are terminated first,
    so work still running stops instead of going on writing (their env workers die with
    them), and none is left when this returns."""
    if abort:
        for proc in list((pool._processes or {}).values()):
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
