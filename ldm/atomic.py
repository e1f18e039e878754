"""Atomic file writes: readers see the old file or the new one, never a half-written one.

Every JSON record ldm keeps on disk (the store's manifest and run metadata, refgen's job and
ranking tables, pipeline.json, scale.json) is written through `write_json_atomic`. Imports
only the standard library, so that every part (and the env hub) can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the block wrote it, fsync and rename it over
    `path`. On an exception the temporary file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, data: Any, indent: int = 1) -> None:
    """Write `data` as JSON to `path` atomically (see `atomic_path`)."""
    write_text_atomic(path, json.dumps(data, indent=indent))
