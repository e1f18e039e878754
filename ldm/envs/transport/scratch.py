"""Worker scratch directories: `$TMPDIR/ldm-worker-*`, one per worker, removed on every exit path.

A client removes a worker's scratch directory when it closes the worker, when it finds the
worker dead, and at interpreter exit (`ldm.envs.transport.lifetime.close_all`). A client that is itself
killed (SIGKILL, OOM) cannot, so each directory holds an `.owner` file that its client keeps
locked (`flock`) while the directory is in use; the first worker a later client starts removes
every `ldm-worker-*` directory whose lock nobody holds. Directories without an `.owner` file
(made by older versions) are removed once no process works in them (Linux: `/proc/*/cwd`) and
they are older than `UNLOCKED_GRACE` seconds; directories younger than `LOCKED_GRACE` seconds
are never touched.

This module imports only the standard library.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "ldm-worker-"
OWNER = ".owner"
LOCKED_GRACE = 30.0  # younger directories are left alone (their client may be locking them)
UNLOCKED_GRACE = 600.0
_cleaned_in: set[str] = set()


class Scratch:
    """A fresh scratch directory, locked by this process until `remove()`."""

    def __init__(self) -> None:
        base = tempfile.gettempdir()
        if base not in _cleaned_in:  # once per client process and temp dir
            _cleaned_in.add(base)
            remove_stale(Path(base))
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        self._fd: int | None = os.open(self.path / OWNER, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.write(self._fd, str(os.getpid()).encode())

    def remove(self) -> None:
        """Delete the directory and release its lock (idempotent)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _age(d: Path) -> float:
    try:
        return time.time() - d.stat().st_mtime
    except OSError:
        return 0.0


def _abandoned(d: Path) -> bool:
    """True when no live client holds `d`'s lock (or, unlocked, nobody works in it any more)."""
    if _age(d) < LOCKED_GRACE:
        return False  # maybe a client between mkdtemp and its lock
    try:
        fd = os.open(d / OWNER, os.O_RDONLY)
    except FileNotFoundError:
        return _unlocked_and_idle(d)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the probe's lock


def _unlocked_and_idle(d: Path) -> bool:
    if _age(d) < UNLOCKED_GRACE:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    target = str(d)
    for p in proc.iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "cwd") == target:
                    return False
            except OSError:
                continue
    return True


def remove_stale(base: Path) -> list[Path]:
    """Remove the scratch directories under `base` left by dead clients; returns them."""
    removed = []
    for d in base.glob(PREFIX + "*"):
        if d.is_dir() and _abandoned(d):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed
