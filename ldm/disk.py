"""A full disk, said plainly: which path, how much space the write needed, how much is free.

Every writer of finished work (the store's run writer and relabelling, atomic files, training
checkpoints, evaluation results) turns an `ENOSPC` into `DiskFullError` through `disk_full`,
after removing what it had half-written, so a rerun after freeing space goes on from the
last finished piece. Imports only the standard library and ldm.errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ldm.errors import DiskFullError

#: how libraries that do not raise OSError say it (safetensors: "... (os error 28)")
_FULL_TEXTS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def is_disk_full(e: BaseException | None) -> bool:
    """Whether `e` (or an error it was raised from) is "no space left on device" or a quota."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(e) for text in _FULL_TEXTS):
            return True
        e = e.__cause__ or e.__context__
    return False


def free_bytes(path: str | Path) -> int:
    """Bytes free to this user on the filesystem holding `path` (or its nearest parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def human(n: float) -> str:
    """`n` bytes as B/KiB/MiB/GiB/TiB with three significant digits."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def disk_full(path: str | Path, needed: int, what: str, kept: str = "") -> DiskFullError:
    """The error for a write of `what` into `path` that found the disk full; `needed`: bytes
    the write needed (an estimate, said as "about"); `kept`: what is left as it was."""
    free = free_bytes(path)
    return DiskFullError(
        f"no space left for {what} at {path}: it needs about {human(needed)}, "
        f"{human(free)} free there; free at least {human(max(0, needed - free))} (or write "
        f"elsewhere) and rerun{'; ' + kept if kept else ''}"
    )


@contextlib.contextmanager
def on_full_disk(path: str | Path, needed: int, what: str, kept: str = "") -> Iterator[None]:
    """Turn an `ENOSPC` (or quota) error raised in the block into `disk_full(...)`; the block
    removes what it half-wrote itself (e.g. in a `finally`) before this runs."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as e:
        # torch.save says only "iostream error": a failed write with less free than it needed
        short = isinstance(e, (OSError, RuntimeError)) and free_bytes(path) < needed
        if is_disk_full(e) or short:
            raise disk_full(path, needed, what, kept) from e
        raise
