"""The trajectory store: runs of reference agents, as chunked compressed zarr arrays.

Layout (see docs/data-format.md):

    STORE/manifest.json            index of committed runs (env, library, transitions, verdict)
    STORE/runs/<run_id>/meta.json  run metadata (SpaceSpecs, algorithm, returns, anchors, checksums)
    STORE/runs/<run_id>/data.zarr  per stream k: s<k>/{obs, actions, rewards, terminated,
                                   truncated[, ref_actions]}, step-major
    STORE/.pending/<run_id>/       runs being written; invisible to readers

A run becomes visible only by an atomic rename from `.pending/` into `runs/` followed by a
manifest entry, so a writer killed at any point never leaves a readable half-run. Imports:
numpy, zarr and ldm's spaces/errors/atomic/disk and `ldm.data`'s chunks, meta, columns and
reader (no torch, no environment library); the writer only lazily, in `create_run`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ldm.atomic import write_json_atomic
from ldm.data.chunks import (
    CHECKED_CODECS,
    WRITE_CONFIG,
)
from ldm.data.columns import column_dtype, column_shape
from ldm.data.meta import FORMAT_VERSION, ManifestEntry, RunMeta
from ldm.data.reader import RunReader
from ldm.disk import on_full_disk
from ldm.errors import StoreError
from ldm.spaces import SpaceSpec

if TYPE_CHECKING:
    from ldm.data.writer import RunWriter


class Store:
    """A directory of runs with a manifest. Safe for several writer processes at once."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        """Open the store at `path`; `create` makes it (folders and an empty manifest) where
        it is missing. Without `create` nothing is written: a path that holds no store (no
        manifest.json) is an error, and every read-only command opens stores this way."""
        self.path = Path(path)
        if not create:
            if not self.path.is_dir():
                raise StoreError(
                    f"store {self.path} does not exist; create it by recording runs into it "
                    "(`ldm refgen all --store ...`)"
                )
            if not self.manifest_path.is_file():
                raise StoreError(
                    f"{self.path} is not a trajectory store (it has no manifest.json); give the "
                    "directory `ldm refgen` recorded into (e.g. runs/quickstart/store)"
                )
            return
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "runs").mkdir(exist_ok=True)
        (self.path / ".pending").mkdir(exist_ok=True)
        if not self.manifest_path.exists():
            with self._locked():
                if not self.manifest_path.exists():
                    write_json_atomic(self.manifest_path, {"format": FORMAT_VERSION, "runs": {}})

    # -- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextlib.contextmanager
    def run_lock(self, run_id: str, wait: bool) -> Iterator[None]:
        """Hold run `run_id`'s lock (STORE/.locks/<run_id>.lock) for the block: its writer holds
        it from creation to commit, relabelling and upgrading while they rewrite its columns.
        `wait=False`: a `StoreError` naming the holder when another process has it."""
        with self.hold_run_lock(run_id, wait):
            yield

    def hold_run_lock(self, run_id: str, wait: bool) -> Any:
        """Take run `run_id`'s lock and return its open file (closing the file releases it).
        A flock: serialised across processes, and across machines on NFS (Linux emulates it
        with NFS byte-range locks); a lock file is never deleted (a deleted one splits the lock)."""
        locks = self.path / ".locks"
        locks.mkdir(exist_ok=True)
        f = open(locks / f"{run_id}.lock", "a+")  # noqa: SIM115 (the caller closes it)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise StoreError(
                f"run {run_id} in {self.path} is being written by {holder}; wait for it to "
                "finish (or stop it) before writing this run again"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        return f

    def manifest(self) -> dict[str, Any]:
        data = json.loads(self.manifest_path.read_text())
        if data.get("format") != FORMAT_VERSION:
            raise StoreError(
                f"store {self.path} has format {data.get('format')}, this ldm reads {FORMAT_VERSION}"
            )
        return data

    def set_manifest_entry(self, run_id: str, entry: ManifestEntry | None) -> None:
        """Write (or, with None, remove) a run's line of manifest.json, under the store lock."""
        self.set_manifest_entries({run_id: entry})

    def set_manifest_entries(self, entries: dict[str, ManifestEntry | None]) -> None:
        """Write (or, with None, remove) several runs' lines of manifest.json in one update
        under the store lock: the file holds every run, so one update per run costs time
        growing with the square of the runs."""
        with self._locked():
            data = self.manifest()
            for run_id, entry in entries.items():
                if entry is None:
                    data["runs"].pop(run_id, None)
                else:
                    data["runs"][run_id] = entry.to_dict()
            write_json_atomic(self.manifest_path, data)

    def runs(
        self, curated_only: bool = False, env_id: str | None = None
    ) -> dict[str, ManifestEntry]:
        """Committed runs from the manifest (no run is opened). `curated_only`: verdict 'pass'."""
        runs = {rid: ManifestEntry.from_dict(e) for rid, e in self.manifest()["runs"].items()}
        return {
            rid: e
            for rid, e in sorted(runs.items())
            if (not curated_only or e.verdict == "pass") and (env_id is None or e.env_id == env_id)
        }

    def reconcile(self) -> list[str]:
        """Add committed run dirs missing from the manifest (a crash between rename and
        manifest update); returns the run ids added."""
        known = self.manifest()["runs"]
        added = {}
        for d in sorted((self.path / "runs").iterdir()):
            if d.name not in known and (d / "meta.json").exists():
                meta = RunMeta.from_dict(json.loads((d / "meta.json").read_text()))
                added[d.name] = meta.manifest_entry()
        if added:
            self.set_manifest_entries(added)
        return list(added)

    # -- runs -----------------------------------------------------------------------------------
    def create_run(
        self,
        env_id: str,
        library: str,
        obs_spec: SpaceSpec,
        act_spec: SpaceSpec,
        num_streams: int = 1,
        meta: dict[str, Any] | None = None,
        run_id: str | None = None,
        chunk_steps: int | None = None,
    ) -> RunWriter:
        """Start a run in `.pending/`; it is visible only after `commit()`."""
        from ldm.data.writer import RunWriter

        run_id = run_id or f"{env_id.replace('/', '__')}-{uuid.uuid4().hex[:8]}"
        if (self.path / "runs" / run_id).exists():
            raise StoreError(f"run {run_id} is already committed in {self.path}")
        return RunWriter(
            self, run_id, env_id, library, obs_spec, act_spec, num_streams, meta or {}, chunk_steps
        )

    def pending(self) -> list[str]:
        """Run ids of uncommitted runs (resume them with `resume_run` or drop with `discard_run`)."""
        pending = self.path / ".pending"
        return sorted(d.name for d in pending.iterdir() if d.is_dir()) if pending.is_dir() else []

    def discard_run(self, run_id: str) -> None:
        """Delete an uncommitted run; a `StoreError` while another process writes it."""
        with self.run_lock(run_id, wait=False):
            shutil.rmtree(self.path / ".pending" / run_id, ignore_errors=True)

    def open_run(self, run_id: str, episodes: bool = True) -> RunReader:
        """A committed run's reader; `episodes=False` leaves out the metadata that grows with
        its episodes (`EPISODE_KEYS`), for whoever holds a reader of every run."""
        path = self.path / "runs" / run_id
        if not (path / "meta.json").exists():
            raise StoreError(f"run {run_id} is not a committed run of {self.path}")
        return RunReader(path, episodes)

    def update_meta(self, run_id: str, updates: dict[str, Any]) -> RunMeta:
        """Merge `updates` (meta.json keys; `curation` may be a `Curation`) into a committed
        run's metadata, validated by `RunMeta`, atomically, and into its manifest entry;
        returns the metadata now on disk."""
        path = self.path / "runs" / run_id / "meta.json"
        with self._locked():
            meta = RunMeta.from_dict(json.loads(path.read_text())).updated(updates)
            write_json_atomic(path, meta.to_dict())
        self.set_manifest_entry(run_id, meta.manifest_entry())
        return meta

    def write_reference_actions(self, run_id: str, stream: int, ref_actions: np.ndarray) -> None:
        """Write (or replace) one stream's reference-action column; observations are untouched."""
        self.write_reference_columns(run_id, {stream: ref_actions})

    def write_reference_columns(
        self,
        run_id: str,
        by_stream: dict[int, np.ndarray],
        meta_updates: dict[str, Any] | None = None,
    ) -> None:
        """Write (or replace) the reference-action columns of these streams and merge their
        checksums (and `meta_updates`) into the metadata in one update: meta.json holds every
        episode, so rewriting it per stream cost a relabelling most of its time."""
        reader = self.open_run(run_id, episodes=False)
        act_spec = reader.act_spec
        checked = {}
        for stream, ref_actions in by_stream.items():
            n = reader.length(stream)
            ref = np.asarray(ref_actions, dtype=column_dtype(act_spec))
            if ref.shape != (n, *column_shape(act_spec)):
                raise StoreError(
                    f"run {run_id} stream {stream}: reference actions have shape {ref.shape}, "
                    f"expected {(n, *column_shape(act_spec))}"
                )
            if ref.dtype.kind == "f" and not np.all(np.isfinite(ref)):
                raise StoreError(f"run {run_id} stream {stream}: reference actions hold NaN/inf")
            checked[stream] = ref
        needed = sum(ref.nbytes for ref in checked.values())  # uncompressed: an upper bound
        kept = "the run keeps its recorded columns; rerun the relabelling (`ldm refgen relabel`)"
        with (
            self.run_lock(run_id, wait=True),  # two relabellings of one run take turns
            on_full_disk(reader.path, needed, f"reference actions of run {run_id}", kept),
        ):
            try:
                sums = self._write_columns(reader, checked)
            except BaseException:
                self._drop_reference_columns(reader, list(checked))
                raise
            self.update_meta(run_id, {**(meta_updates or {}), "checksums": sums})

    def _write_columns(self, reader: RunReader, by_stream: dict[int, np.ndarray]) -> dict:
        """Write reference-action columns; returns the run's checksums with theirs."""
        group = zarr.open_group(str(reader.path / "data.zarr"), mode="a")
        sums = dict(self.open_run(reader.run_id, episodes=False).meta.checksums)
        for stream, ref in by_stream.items():
            arr = group.create_array(
                f"s{stream}/ref_actions",
                shape=ref.shape,
                dtype=ref.dtype,
                chunks=group[f"s{stream}/actions"].chunks,
                compressors=CHECKED_CODECS,
                config=WRITE_CONFIG,
                overwrite=True,
            )
            arr[...] = ref
            sums[f"s{stream}/ref_actions"] = hashlib.sha256(
                np.ascontiguousarray(ref).tobytes()
            ).hexdigest()
        return sums

    def _drop_reference_columns(self, reader: RunReader, streams: list[int]) -> None:
        """After a failed relabelling: remove its half-written columns, and their checksums
        if an earlier relabelling recorded them (best effort: the disk may still be full)."""
        for stream in streams:
            shutil.rmtree(reader.path / "data.zarr" / f"s{stream}" / "ref_actions", True)
        sums = dict(self.open_run(reader.run_id, episodes=False).meta.checksums)
        if any(f"s{k}/ref_actions" in sums for k in streams):
            for k in streams:
                sums.pop(f"s{k}/ref_actions", None)
            with contextlib.suppress(Exception):
                self.update_meta(reader.run_id, {"checksums": sums, "relabelled": False})
