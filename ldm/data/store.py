"""The trajectory store: runs of reference agents, as chunked compressed zarr arrays.

Layout (see docs/data-format.md):

    STORE/manifest.json            index of committed runs (env, library, transitions, verdict)
    STORE/runs/<run_id>/meta.json  run metadata (SpaceSpecs, algorithm, returns, anchors, checksums)
    STORE/runs/<run_id>/data.zarr  per stream k: s<k>/{obs, actions, rewards, terminated,
                                   truncated[, ref_actions]}, step-major
    STORE/.pending/<run_id>/       runs being written; invisible to readers

A run becomes visible only by an atomic rename from `.pending/` into `runs/` followed by a
manifest entry, so a writer killed at any point never leaves a readable half-run. Imports:
numpy, zarr and ldm's spaces/errors only (no torch, no environment library).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ldm.atomic import write_json_atomic
from ldm.data.meta import FORMAT_VERSION, ManifestEntry, RunMeta
from ldm.errors import StoreError
from ldm.spaces import SpaceSpec

if TYPE_CHECKING:
    from ldm.data.writer import RunWriter

COLUMNS = ("obs", "actions", "rewards", "terminated", "truncated")


def tenth(episodes: int) -> int:
    """How many episodes the paper's "first / last 10%" takes of `episodes` (at least one).
    The anchors, curation's t-test, refgen's ranking and the report all use this rule."""
    return max(1, int(np.ceil(0.1 * episodes)))


def split_tenths(returns: Any) -> tuple[np.ndarray, np.ndarray]:
    """The returns of the first and of the last 10% of episodes (at least one each)."""
    r = np.asarray(returns, dtype=np.float64)
    k = tenth(r.size)
    return r[:k], r[-k:]


def normalised_score(mean_return: float, first10: float, last10: float) -> float | None:
    """Reference-normalised score in percent, 100 x (R - first10) / (last10 - first10), on a
    run's `anchors`; None when the anchors are equal (not scorable). The evaluation scores
    the LDM with it, curation a reference's deterministic check."""
    if np.isclose(last10, first10):
        return None
    return float(100.0 * (mean_return - first10) / (last10 - first10))


def anchors(returns: list[float] | np.ndarray) -> tuple[float, float]:
    """Normalisation anchors: mean return of the first and of the last 10% of episodes
    (at least one episode each). Everybody computes them with this function."""
    if np.asarray(returns).size == 0:
        raise StoreError("cannot compute anchors: the run has no finished episode")
    first, last = split_tenths(returns)
    return float(first.mean()), float(last.mean())


def column_sha256(array: Any, length: int, chunk: int) -> Any:
    """sha256 of the first `length` steps of a column, read `chunk` steps at a time (the
    checksum recorded at commit, recomputed by resume and by `ldm data verify`)."""
    h = hashlib.sha256()
    for a in range(0, length, chunk):
        h.update(np.ascontiguousarray(array[a : min(length, a + chunk)]).tobytes())
    return h


#: dtype of a run's obs/actions column by space kind (every other kind stores int64 indices)
_COLUMN_DTYPES = {"image": np.dtype(np.uint8), "continuous": np.dtype(np.float32)}


def column_dtype(spec: SpaceSpec) -> np.dtype:
    """dtype of a run's obs or actions column for a space."""
    return _COLUMN_DTYPES.get(spec.kind, np.dtype(np.int64))


def column_shape(spec: SpaceSpec) -> tuple[int, ...]:
    """Shape of one step of a run's obs or actions column for a space."""
    return spec.value_shape


class Store:
    """A directory of runs with a manifest. Safe for several writer processes at once."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise StoreError(
                    f"store {self.path} does not exist; create it by recording runs into it"
                )
            self.path.mkdir(parents=True)
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
        return sorted(d.name for d in (self.path / ".pending").iterdir() if d.is_dir())

    def discard_run(self, run_id: str) -> None:
        """Delete an uncommitted run."""
        shutil.rmtree(self.path / ".pending" / run_id, ignore_errors=True)

    def open_run(self, run_id: str, episodes: bool = True) -> RunReader:
        """A committed run's reader; `episodes=False` leaves out the metadata that grows with
        its episodes (`EPISODE_KEYS`), for whoever holds a reader of every run."""
        path = self.path / "runs" / run_id
        if not (path / "meta.json").exists():
            raise StoreError(f"run {run_id} is not a committed run of {self.path}")
        return RunReader(path, episodes)

    def update_meta(self, run_id: str, updates: dict[str, Any]) -> dict[str, Any]:
        """Merge `updates` (meta.json keys; `curation` may be a `Curation`) into a committed
        run's metadata, validated by `RunMeta`, atomically, and into its manifest entry."""
        path = self.path / "runs" / run_id / "meta.json"
        with self._locked():
            meta = RunMeta.from_dict(json.loads(path.read_text())).updated(updates)
            write_json_atomic(path, meta.to_dict())
        self.set_manifest_entry(run_id, meta.manifest_entry())
        return meta.to_dict()

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
        reader = self.open_run(run_id)
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
        group = zarr.open_group(str(reader.path / "data.zarr"), mode="a")
        sums = dict(reader.meta["checksums"])
        for stream, ref in checked.items():
            arr = group.create_array(
                f"s{stream}/ref_actions",
                shape=ref.shape,
                dtype=ref.dtype,
                chunks=group[f"s{stream}/actions"].chunks,
                overwrite=True,
            )
            arr[...] = ref
            sums[f"s{stream}/ref_actions"] = hashlib.sha256(
                np.ascontiguousarray(ref).tobytes()
            ).hexdigest()
        self.update_meta(run_id, {**(meta_updates or {}), "checksums": sums})


#: meta.json keys whose size grows with a run's episodes (thousands per run at the paper's
#: budgets: the sampler's readers of 10,000 such runs held 6 GB of them)
EPISODE_KEYS = ("episodes", "episode_returns", "check_returns")


class RunReader:
    """Lazy access to a committed run: `meta`, per-stream zarr arrays. Opened with
    `episodes=False`, its `meta` (and `record`) lacks `EPISODE_KEYS`."""

    def __init__(self, path: Path, episodes: bool = True) -> None:
        self.path = Path(path)
        self.run_id = self.path.name
        self.meta = json.loads((self.path / "meta.json").read_text())
        if not episodes:
            for key in EPISODE_KEYS:
                self.meta.pop(key, None)
        if self.meta.get("format") != FORMAT_VERSION:
            raise StoreError(
                f"run {self.run_id} has format {self.meta.get('format')}, expected {FORMAT_VERSION}"
            )
        self.obs_spec = SpaceSpec.from_dict(self.meta["observation_space"])
        self.act_spec = SpaceSpec.from_dict(self.meta["action_space"])
        self._group: Any = None

    @property
    def record(self) -> RunMeta:
        """The metadata as a typed, validated record (`meta` is the raw meta.json dict)."""
        return RunMeta.from_dict(self.meta)

    @property
    def group(self) -> Any:
        if self._group is None:
            self._group = zarr.open_group(str(self.path / "data.zarr"), mode="r")
        return self._group

    @property
    def num_streams(self) -> int:
        return int(self.meta["num_streams"])

    def length(self, stream: int) -> int:
        return int(self.meta["stream_lengths"][stream])

    def has_reference_actions(self) -> bool:
        return all(f"s{k}/ref_actions" in self.meta["checksums"] for k in range(self.num_streams))

    def array(self, stream: int, column: str) -> Any:
        try:
            return self.group[f"s{stream}/{column}"]
        except KeyError:
            raise StoreError(
                f"run {self.run_id} has no column {column!r} in stream {stream}"
            ) from None

    def read(self, stream: int, column: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return np.asarray(self.array(stream, column)[start:stop])


def new_meta(
    env_id: str,
    library: str,
    obs_spec: SpaceSpec,
    act_spec: SpaceSpec,
    num_streams: int,
    extra: dict,
) -> dict:
    return {
        "format": FORMAT_VERSION,
        "env_id": env_id,
        "library": library,
        "observation_space": obs_spec.to_dict(),
        "action_space": act_spec.to_dict(),
        "num_streams": num_streams,
        "created": time.time(),
        **extra,
    }
