"""RunWriter: append a run's transitions while it is recorded, with bounded memory.

Each `append` is one vector step of K parallel streams. Steps are validated against the
run's SpaceSpecs before they are buffered (a bad array never reaches disk), buffered per
stream, and flushed every `chunk_steps` steps as zarr appends. `commit()` writes the
metadata (checksums, returns, anchors) and renames the run from `.pending/` into `runs/`.

Imports numpy, zarr, ldm.data's anchors/chunks/columns/meta, ldm.atomic, ldm.spaces; never
the store (it imports the writer: what a writer needs of it is `RunHome`), torch or an
environment library.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr

from ldm.atomic import write_json_atomic
from ldm.data.anchors import anchors
from ldm.data.chunks import CHECKED_CODECS, WRITE_CONFIG, column_sha256, for_writing
from ldm.data.columns import COLUMNS, column_dtype, column_shape
from ldm.data.meta import Episode, RunMeta, new_meta
from ldm.disk import disk_full, is_disk_full
from ldm.errors import DiskFullError, StoreError
from ldm.spaces import SpaceSpec


class RunHome(Protocol):
    """What a writer needs of the store it writes into (`ldm.data.store.Store` is one)."""

    path: Path

    def hold_run_lock(self, run_id: str, wait: bool) -> Any: ...

    def set_manifest_entry(self, run_id: str, entry: Any) -> None: ...


#: a chunk holds about this many bytes of observations, within CHUNK_STEPS: 64x64 RGB frames
#: get 64-step chunks, vectors and small grids 4096 (a MiniGrid 7x7x3 grid at 64 steps made
#: 2.3 KB chunks and a flush every 64 steps: 17% of a recording PPO job went to zarr appends)
CHUNK_OBS_BYTES = 1 << 20
CHUNK_STEPS = (64, 4096)


def default_chunk_steps(obs_spec: SpaceSpec) -> int:
    """Steps per chunk (a power of two) for a run with these observations."""
    step_bytes = max(1, int(np.prod(column_shape(obs_spec))) * column_dtype(obs_spec).itemsize)
    steps = 2 ** int(np.log2(max(1.0, CHUNK_OBS_BYTES / step_bytes)))
    return int(min(CHUNK_STEPS[1], max(CHUNK_STEPS[0], steps)))


class RunWriter:
    """Writes one run into `.pending/<run_id>`; see Store.create_run. Its metadata is a
    `RunMeta` (`meta`), written to `pending.json` at every flush and to `meta.json` at commit."""

    def __init__(
        self,
        store: RunHome,
        run_id: str,
        env_id: str,
        library: str,
        obs_spec: SpaceSpec,
        act_spec: SpaceSpec,
        num_streams: int,
        meta: dict[str, Any],
        chunk_steps: int | None = None,
        resume: bool = False,
    ) -> None:
        if num_streams < 1:
            raise StoreError(f"run {run_id}: num_streams must be >= 1, got {num_streams}")
        self.store, self.run_id, self.env_id = store, run_id, env_id
        self.obs_spec, self.act_spec, self.K = obs_spec, act_spec, num_streams
        self.path = store.path / ".pending" / run_id
        self.chunk_steps = chunk_steps or default_chunk_steps(obs_spec)
        self._dtypes = {
            "obs": column_dtype(obs_spec),
            "actions": column_dtype(act_spec),
            "rewards": np.dtype(np.float32),
            "terminated": np.dtype(bool),
            "truncated": np.dtype(bool),
        }
        self._shapes = {
            "obs": column_shape(obs_spec),
            "actions": column_shape(act_spec),
            "rewards": (),
            "terminated": (),
            "truncated": (),
        }
        self._buf: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
        self._ep_return = np.zeros(num_streams)
        self._ep_length = np.zeros(num_streams, dtype=np.int64)
        self.closed = False
        # held until commit or abort: a second process writing this run is refused
        self._lock = store.hold_run_lock(run_id, wait=False)
        try:
            self._start(resume, library, meta)
        except BaseException:
            self._lock.close()
            raise

    def _start(self, resume: bool, library: str, meta: dict[str, Any]) -> None:
        store, run_id, num_streams = self.store, self.run_id, self.K
        if resume:
            self._load_pending()
            return
        if self.path.exists():
            raise StoreError(
                f"run {run_id} is already pending in {store.path}; resume it "
                "(Store.resume_run) or discard it (Store.discard_run)"
            )
        self._begin(new_meta(self.env_id, library, self.obs_spec, self.act_spec, num_streams, meta))
        self._hash = {f"s{k}/{c}": hashlib.sha256() for k in range(num_streams) for c in COLUMNS}
        self.path.mkdir(parents=True)
        try:
            group = zarr.open_group(str(self.path / "data.zarr"), mode="w")
            for k in range(num_streams):
                for c in COLUMNS:
                    shape = self._shapes[c]
                    chunk = self.chunk_steps
                    group.create_array(
                        f"s{k}/{c}",
                        shape=(0, *shape),
                        dtype=self._dtypes[c],
                        chunks=(chunk, *shape),
                        compressors=CHECKED_CODECS,
                        config=WRITE_CONFIG,
                    )
            self._open_arrays(group)
            self._save_pending()
        except BaseException:  # e.g. a full disk: no half-made pending run is left
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def _begin(self, meta: RunMeta) -> None:
        """Hold `meta` as what the run started with, its lengths and episodes as what grows."""
        self._start_meta = meta
        self._lengths = list(meta.stream_lengths)
        self._episodes = list(meta.episodes)

    @property
    def meta(self) -> RunMeta:
        """The run's metadata so far: the streams' flushed lengths and the episodes ended."""
        return replace(
            self._start_meta, stream_lengths=tuple(self._lengths), episodes=tuple(self._episodes)
        )

    @property
    def episodes(self) -> list[Episode]:
        """The episodes ended so far, in order (the recorder bounds its checks by them)."""
        return list(self._episodes)

    def _open_arrays(self, group: Any) -> None:
        """Handles of every column, opened once (each lookup reads the array's metadata)."""
        self._arrays = {
            f"s{k}/{c}": for_writing(group[f"s{k}/{c}"]) for k in range(self.K) for c in COLUMNS
        }

    # -- appending ------------------------------------------------------------------------------
    def append(self, obs: Any, actions: Any, rewards: Any, terminated: Any, truncated: Any) -> None:
        """One vector step: arrays with leading dimension K (the number of streams)."""
        if self.closed:
            raise StoreError(f"run {self.run_id} is closed (committed or aborted)")
        cols = {
            "obs": obs,
            "actions": actions,
            "rewards": rewards,
            "terminated": terminated,
            "truncated": truncated,
        }
        checked = {c: self._check(c, v) for c, v in cols.items()}
        for c, v in checked.items():
            self._buf[c].append(v)
        self._ep_return += checked["rewards"]
        self._ep_length += 1
        for k in np.flatnonzero(checked["terminated"] | checked["truncated"]):
            step = self._lengths[k] + len(self._buf["rewards"]) - 1
            self._episodes.append(
                Episode(int(k), float(self._ep_return[k]), int(self._ep_length[k]), int(step))
            )
            self._ep_return[k] = 0.0
            self._ep_length[k] = 0
        if len(self._buf["rewards"]) >= self.chunk_steps:
            self.flush()

    def _check(self, column: str, value: Any) -> np.ndarray:
        arr = np.asarray(value)
        want = (self.K, *self._shapes[column])
        if arr.shape != want:
            raise StoreError(
                f"run {self.run_id} ({self.env_id}): {column} has shape {arr.shape}, expected {want} "
                f"(K={self.K} streams x the SpaceSpec's shape)"
            )
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise StoreError(f"run {self.run_id} ({self.env_id}): {column} holds NaN or inf")
        dt = self._dtypes[column]
        if dt.kind in "iub" and arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise StoreError(
                f"run {self.run_id} ({self.env_id}): {column} must hold integers, got {arr.dtype}"
            )
        # always a copy: the buffer keeps it until the flush, and callers reuse or change their
        # arrays after a step (SB3 adds bootstrapped values to the rewards it got, in place)
        return arr.astype(dt, copy=True)

    def flush(self) -> None:
        """Append the buffered steps to disk (all streams together, so lengths stay equal)."""
        if not self._buf["rewards"]:
            return
        stacked = {c: np.stack(v, axis=1) for c, v in self._buf.items()}  # (K, n, ...)
        try:
            for k in range(self.K):
                for c in COLUMNS:
                    data = np.ascontiguousarray(stacked[c][k])
                    self._arrays[f"s{k}/{c}"].append(data, axis=0)
                    self._hash[f"s{k}/{c}"].update(data.tobytes())
            n = stacked["rewards"].shape[1]
            self._lengths = [x + n for x in self._lengths]
            self._buf = {c: [] for c in COLUMNS}
            self._save_pending()
        except (OSError, DiskFullError) as e:
            self.abort()
            if isinstance(e, DiskFullError):
                raise
            if is_disk_full(e):
                raise disk_full(
                    self.store.path,
                    sum(v.nbytes for v in stacked.values()),
                    f"run {self.run_id}",
                    "the run was discarded; a rerun records it again",
                ) from e
            raise StoreError(
                f"run {self.run_id}: writing failed ({e}); the run was discarded"
            ) from e

    # -- pending state ----------------------------------------------------------------------------
    def _save_pending(self) -> None:
        # no hash state: hashes are recomputed on resume from the flushed data
        write_json_atomic(self.path / "pending.json", self.meta.to_dict())

    def _load_pending(self) -> None:
        if not (self.path / "pending.json").exists():
            raise StoreError(f"run {self.run_id} is not pending in {self.store.path}")
        meta = read_pending(self.path)
        self._open_arrays(zarr.open_group(str(self.path / "data.zarr"), mode="a"))
        self.chunk_steps = self._arrays["s0/rewards"].chunks[0]  # as the run was created
        self._hash = {}
        for k in range(self.K):
            n = meta.stream_lengths[k]
            for c in COLUMNS:
                arr = self._arrays[f"s{k}/{c}"]
                if arr.shape[0] != n:  # a flush interrupted half-way: drop its tail
                    arr.resize((n, *arr.shape[1:]))
                self._hash[f"s{k}/{c}"] = column_sha256(arr, n, self.chunk_steps)
        # episodes that ended after the last flush are lost with the buffer
        last = min(meta.stream_lengths) if meta.stream_lengths else 0
        self._begin(replace(meta, episodes=tuple(e for e in meta.episodes if e.end < last)))

    # -- ending ---------------------------------------------------------------------------------
    def commit(self, meta_updates: dict[str, Any] | None = None) -> str:
        """Flush, write the metadata and make the run visible; returns the run id."""
        self.flush()
        # a malformed update fails here, before the run is visible
        record = self.meta.updated(meta_updates or {})
        returns = tuple(e.return_ for e in record.episodes)
        record = replace(
            record,
            checksums={k: h.hexdigest() for k, h in self._hash.items()},
            transitions=int(sum(record.stream_lengths)),
            episode_returns=returns,
            committed=time.time(),
        )
        if returns:
            first10, last10 = anchors(returns)
            record = replace(record, first10=first10, last10=last10)
        write_json_atomic(self.path / "meta.json", record.to_dict())
        (self.path / "pending.json").unlink(missing_ok=True)
        final = self.store.path / "runs" / self.run_id
        os.replace(self.path, final)
        self.store.set_manifest_entry(self.run_id, record.manifest_entry())
        self.closed = True
        self._lock.close()
        return self.run_id

    def abort(self) -> None:
        """Discard the run."""
        self.closed = True
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None and not self.closed:
            self.abort()


def resume_run(store: RunHome, run_id: str) -> RunWriter:
    """Reopen a pending run after a crash: the data flushed so far is kept."""
    meta = read_pending(store.path / ".pending" / run_id)
    return RunWriter(
        store,
        run_id,
        meta.env_id,
        meta.library,
        meta.observation_space,
        meta.action_space,
        meta.num_streams,
        {},
        resume=True,
    )


def read_pending(path: Path) -> RunMeta:
    """A pending run's metadata as of its last flush (`<path>/pending.json`)."""
    raw = json.loads((path / "pending.json").read_text())
    raw.pop("_hash_state", None)  # written (as null) by ldm before 2026-12-06
    return RunMeta.from_dict(raw)
