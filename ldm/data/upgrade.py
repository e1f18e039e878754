"""Upgrading a run in place: legacy columns rewritten as checked ones (a checksum per chunk).

`upgrade_run` copies every vouched column of a run, chunk by chunk, into a new zarr group
beside the old one with `CHECKED_CODECS`, checks the copy against the sha256 the writer
recorded, and swaps the two directories under the run's lock. A column that fails its check
is not upgraded (that would bless damaged data): the run is left as it was and named. A
crash leaves the old group or the new one, never neither: the next call finishes the swap.

`upgrade_store` also writes the manifest's stream index where entries lack it (stores written
before it; ldm/data/index.py).

Owns: `upgrade_run`, `upgrade_store`, `rewrite_run` (also used to write legacy copies in
tests and bench/data.py). Imports zarr, ldm.data.store/chunks/index and ldm.errors; never
torch.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zarr

from ldm.data.chunks import CHECKED_CODECS, WRITE_CONFIG, column_sha256
from ldm.data.index import reindex
from ldm.data.store import Store
from ldm.errors import DamagedRunError

DATA, NEW, OLD = "data.zarr", "data.zarr.upgrade", "data.zarr.old"


@dataclass(frozen=True)
class UpgradeReport:
    """What `upgrade_store` did: run ids upgraded, already checked, and damaged (with why)."""

    upgraded: tuple[str, ...]
    already: tuple[str, ...]
    damaged: dict[str, str]
    reindexed: tuple[str, ...] = ()
    """Runs whose manifest entry was rewritten from their meta.json (`ldm.data.index`)."""


def _finish_swap(run_dir: Path) -> None:
    """Complete (or undo) a swap a crash interrupted."""
    if not (run_dir / DATA).exists() and (run_dir / OLD).exists():
        os.replace(run_dir / OLD, run_dir / DATA)  # crashed between the two renames
    shutil.rmtree(run_dir / OLD, ignore_errors=True)
    shutil.rmtree(run_dir / NEW, ignore_errors=True)


def rewrite_run(store: Store, run_id: str, checked: bool = True, compressors: Any = None) -> None:
    """Rewrite every column that has a checksum, each chunk read through its check, with
    (`checked`) or without (a legacy copy) a checksum per chunk, and swap it in.
    `compressors`: others than those `checked` says (bench/data.py compares encodings)."""
    run_dir = store.path / "runs" / run_id
    reader = store.open_run(run_id, episodes=False)
    new = zarr.open_group(str(run_dir / NEW), mode="w")
    for key in sorted(reader.meta.checksums):
        stream, column = _stream_column(key)
        src = reader.column(stream, column)  # a legacy column is hashed whole here
        dst = new.create_array(
            key,
            shape=(src.length, *src.array.shape[1:]),
            dtype=src.array.dtype,
            chunks=src.array.chunks,
            compressors=compressors or (CHECKED_CODECS if checked else "auto"),
            config=WRITE_CONFIG if checked else None,
        )
        for a in range(0, src.length, src.chunk):
            dst[a : a + src.chunk] = src.read(a, a + src.chunk)
        if column_sha256(dst, src.length, src.chunk).hexdigest() != reader.meta.checksums[key]:
            raise DamagedRunError(  # the copy is read back before it replaces anything
                run_id, stream, column, "the rewritten copy differs from the recorded sha256"
            )
    os.replace(run_dir / DATA, run_dir / OLD)
    os.replace(run_dir / NEW, run_dir / DATA)
    shutil.rmtree(run_dir / OLD)


def _stream_column(key: str) -> tuple[int, str]:
    """`s3/obs` -> (3, "obs")."""
    stream, column = key.split("/")
    return int(stream[1:]), column


def upgrade_run(store: Store, run_id: str) -> bool:
    """Rewrite a run's legacy columns as checked ones; False when there were none.
    A `DamagedRunError` (run left as it was) when a column fails its check; a `StoreError`
    while another process writes the run."""
    with store.run_lock(run_id, wait=False):
        _finish_swap(store.path / "runs" / run_id)
        if not store.open_run(run_id, episodes=False).legacy_columns():
            return False
        try:
            rewrite_run(store, run_id, checked=True)
        except BaseException:
            shutil.rmtree(store.path / "runs" / run_id / NEW, ignore_errors=True)
            raise
    return True


def upgrade_store(store: Store, progress: Any = None) -> UpgradeReport:
    """The manifest's stream index rebuilt where an entry lacks or contradicts it, then
    `upgrade_run` on every committed run; `progress(run_id, outcome)` after each."""
    store.reconcile()
    reindexed = reindex(store)
    upgraded: list[str] = []
    already: list[str] = []
    damaged: dict[str, str] = {}
    for run_id in store.runs():
        try:
            done = upgrade_run(store, run_id)
        except DamagedRunError as e:
            damaged[run_id] = str(e)
            outcome = f"DAMAGED, left as it was: {e}"
        else:
            (upgraded if done else already).append(run_id)
            outcome = "upgraded" if done else "already checked"
        if progress is not None:
            progress(run_id, outcome)
    return UpgradeReport(tuple(upgraded), tuple(already), damaged, tuple(reindexed))
