"""Atomic file writes: readers see the old file or the new one, never a half-written one.

Every JSON record ldm keeps on disk (the store's manifest and run metadata, refgen's job and
ranking tables, pipeline.json, scale.json) is written through `write_json_atomic`. A file
gets the mode the user's umask gives a new file (0644 under umask 022), not mkstemp's 0600,
so that other users and nodes of a shared filesystem can read it. A full disk is a
`DiskFullError` naming the file (ldm/disk.py). Imports only the standard library, ldm.errors
and ldm.disk, so that every part (and the env hub) can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ldm.disk import disk_full, is_disk_full

_umask_lock = threading.Lock()


def umask() -> int:
    """The process's umask (read from /proc where it can be, else set and restored)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, size: int = 0) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the block wrote it, fsync and rename it over
    `path` with the umask's mode. On an exception the temporary file is removed and `path` is
    untouched; a full disk is a `DiskFullError` (`size`: the bytes the block means to write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if is_disk_full(e):
            raise disk_full(path, max(size, written), path.name, "the old file is kept") from e
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically (see `atomic_path`)."""
    data = text.encode()
    with atomic_path(path, len(data)) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | Path, data: Any, indent: int = 1) -> None:
    """Write `data` as JSON to `path` atomically (see `atomic_path`)."""
    write_text_atomic(path, json.dumps(data, indent=indent))
