"""SharedBuffer: the memory a client shares with one worker for its step path (an anonymous
memfd for the process and sandbox backends; a file of /dev/shm, and two wake-up FIFOs
beside it, bind-mounted into a Docker container), and `sweep_stale`, which removes the
names dead clients left in /dev/shm.

Imports the standard library only.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path
from typing import Any

SHM_DIR = Path("/dev/shm")
NAME_PREFIX = "ldm-shm-"


class SharedBuffer:
    """Memory shared by the client and one worker. The client creates it and owns it."""

    def __init__(self, fd: int, path: Path | None = None, worker_path: str | None = None):
        self.fd = fd
        self.path = path  # a name in /dev/shm (Docker only), unlinked once mapped
        self.worker_path = worker_path  # that file as the worker sees it
        self.mm: mmap.mmap | None = None
        # Docker: the FIFOs the channel moves to (to the worker, from it), host and worker paths
        self.wake: tuple[Path, Path] | None = None
        self.worker_wake: tuple[str, str] | None = None

    @classmethod
    def anonymous(cls) -> SharedBuffer:
        """A memfd: no name in any filesystem, passed to the worker as an inherited fd."""
        return cls(os.memfd_create("ldm-shm", os.MFD_CLOEXEC))

    @classmethod
    def named(cls, worker_path: str) -> SharedBuffer:
        """A file of /dev/shm to bind-mount into a container at `worker_path`."""
        sweep_stale()
        fd, name = tempfile.mkstemp(prefix=f"{NAME_PREFIX}{os.getpid()}-", dir=SHM_DIR)
        return cls(fd, Path(name), worker_path)

    def add_wake(self) -> list[tuple[Path, str]]:
        """Two FIFOs next to the named buffer, for the wake-ups (Docker: the container's
        stdin/stdout are relayed by the engine, two more processes each way); returns
        (host path, worker path) pairs to bind-mount."""
        assert self.path is not None and self.worker_path is not None
        host = (
            self.path.with_name(self.path.name + "-to"),
            self.path.with_name(self.path.name + "-from"),
        )
        for f in host:
            os.mkfifo(f, 0o600)
        self.wake = host
        self.worker_wake = (self.worker_path + "-to", self.worker_path + "-from")
        return list(zip(host, self.worker_wake))

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return () if self.path is not None else (self.fd,)

    def worker_ref(self) -> dict[str, Any]:
        """How the worker finds the buffer: its inherited fd or its mounted path."""
        return {"path": self.worker_path} if self.path is not None else {"fd": self.fd}

    def map(self, size: int) -> mmap.mmap:
        os.ftruncate(self.fd, size)
        self.mm = mmap.mmap(self.fd, size)
        return self.mm

    def release_name(self) -> None:
        """Unlink the /dev/shm names: the mappings (and open FIFOs) live on without them."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        for f in self.wake or ():
            f.unlink(missing_ok=True)

    def close(self) -> None:
        self.release_name()
        if self.mm is not None:
            try:
                self.mm.close()
            except BufferError:  # views still held by the caller: freed with them
                pass
            self.mm = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def sweep_stale(directory: Path = SHM_DIR) -> int:
    """Remove /dev/shm names left by clients that died before unlinking them; returns how many."""
    removed = 0
    for f in directory.glob(f"{NAME_PREFIX}*-*"):
        try:
            pid = int(f.name[len(NAME_PREFIX) :].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
            removed += 1
        except (ValueError, PermissionError):
            continue
    return removed
