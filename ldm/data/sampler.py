"""Window sampler: random windows of L consecutive transitions, tokenized.

A window is L consecutive transitions of one stream of one run, ending at a uniformly drawn
step; it crosses episode boundaries (the model's history does) and is left-padded when it
ends before step L (padding masked out of the loss). Which stream a window comes from is drawn
by weight: `uniform` (every transition equally likely), `env` (every env equally likely, then
by transitions), or `library` (every library equally likely, then env, then transitions), so
a few huge envs do not drown small ones.

Batch i of rank r is drawn from a generator seeded by (seed, r, i): the stream of batches is
deterministic, disjoint across DDP ranks, and the loader's whole state is the next batch
index (and the runs dropped so far), which makes resuming exact. The loader
(ldm/data/loader.py) tokenizes in DataLoader worker processes.

Every chunk is read through `RunReader.column` (ldm/data/chunks.py): a damaged chunk is a
`DamagedRunError`. `on_bad_run="stop"` raises it; `"drop"` removes that run from sampling,
records it in `dropped` and draws the window again, so no window holds a chunk that failed
its check.

Start-up reads the manifest (ldm/data/index.py); a run is opened at its first window.
Imports numpy, ldm.data.store/reader/columns/index, ldm.tokenizer and ldm.tokens; never torch,
ldm.model or an environment library.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from ldm.data.columns import COLUMNS
from ldm.data.episodes import first_episodes, training_streams
from ldm.data.index import LazyReaders, stream_index
from ldm.data.store import Store
from ldm.errors import DamagedRunError, StoreError
from ldm.tokenizer import collate, tokenize_window
from ldm.tokens import Batch, Window

#: window sampling weights: uniform over transitions, or balanced over envs or libraries
Weighting = Literal["uniform", "env", "library"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
#: "train": all streams but the last of each multi-stream run (the last sub-env, its own
#: seed, is held out); "val": only those held-out streams; "none": everything.
Holdout = Literal["none", "train", "val"]
HOLDOUT: tuple[str, ...] = get_args(Holdout)
#: the action a window teaches: the reference's, the one taken, or the reference's where
#: the run was relabelled and the taken one elsewhere
Targets = Literal["reference", "actions", "reference_or_actions"]
TARGETS: tuple[str, ...] = get_args(Targets)
#: what a damaged chunk does: stop with its `DamagedRunError`, or drop its run and go on
OnBadRun = Literal["stop", "drop"]
ON_BAD_RUN: tuple[str, ...] = get_args(OnBadRun)


@dataclass(frozen=True)
class StreamRef:
    run_id: str
    stream: int
    env_id: str
    library: str
    length: int


class WindowSampler:
    """Draws tokenized windows from a store; pure numpy (usable without torch)."""

    def __init__(
        self,
        store: Store | str,
        window_len: int,
        weighting: Weighting = "uniform",
        curated_only: bool = True,
        envs: list[str] | None = None,
        runs: list[str] | None = None,
        targets: Targets = "reference",
        cache_bytes: int = 1 << 30,
        holdout: Holdout = "none",
        on_bad_run: OnBadRun = "stop",
        exclude: list[str] | None = None,
        episodes: int | None = None,
    ) -> None:
        """`envs`/`runs`: only these; `exclude`: never the runs of these env ids or libraries
        (a pipeline's held-out envs: their runs are not even opened); `episodes`: only the
        first K finished episodes of each env (`ldm.data.episodes`), the rest of its streams
        unread; `on_bad_run`: stop at a damaged run, or drop it and go on."""
        if on_bad_run not in ON_BAD_RUN:
            raise StoreError(f"on_bad_run {on_bad_run!r} is not one of {ON_BAD_RUN}")
        self.on_bad_run = on_bad_run
        self.dropped: dict[str, str] = {}
        """run id -> why it was dropped (the `DamagedRunError`'s message)."""
        if weighting not in WEIGHTINGS:
            raise StoreError(f"weighting {weighting!r} is not one of {WEIGHTINGS}")
        if window_len < 1:
            raise StoreError(f"window_len must be >= 1, got {window_len}")
        if holdout not in HOLDOUT:
            raise StoreError(f"holdout {holdout!r} is not one of {HOLDOUT}")
        if targets not in TARGETS:
            raise StoreError(f"targets {targets!r} is not one of {TARGETS}")
        self.store = store if isinstance(store, Store) else Store(store, create=False)
        self.window_len, self.weighting, self.targets = window_len, weighting, targets
        entries = self.store.runs(curated_only=curated_only)
        if runs is not None:
            entries = {r: e for r, e in entries.items() if r in set(runs)}
        if envs is not None:
            entries = {r: e for r, e in entries.items() if e.env_id in set(envs)}
        if exclude:
            out = set(exclude)
            entries = {r: e for r, e in entries.items() if not {e.env_id, e.library} & out}
        if not entries:
            what = "curated (verdict 'pass') " if curated_only else ""
            raise StoreError(
                f"store {self.store.path} has no {what}runs to sample"
                + (" for the requested envs/runs" if envs or runs else "")
                + "; record runs with `ldm refgen` (and curate them), or pass curated_only=False"
            )
        index = stream_index(self.store, entries, need_reference=targets == "reference")
        self.readers = LazyReaders(self.store, index)
        self.streams: list[StreamRef] = []
        for rid, e in entries.items():
            run = index[rid]
            if targets == "reference" and not run.reference_actions:
                raise StoreError(
                    f"run {rid} ({e.env_id}) has no reference actions; run `ldm refgen relabel` "
                    "first, or sample with targets='reference_or_actions'"
                )
            for k, length in enumerate(run.lengths):
                held_out = k not in training_streams(len(run.lengths))
                if holdout == "train" and held_out or holdout == "val" and not held_out:
                    continue
                if length > 0:
                    self.streams.append(StreamRef(rid, k, e.env_id, e.library, length))
        if episodes is not None:
            self.streams = self._first_episodes(episodes)
        if not self.streams:
            raise StoreError(
                f"store {self.store.path}: no stream left to sample with holdout={holdout!r}"
            )
        self.env_ids = sorted({s.env_id for s in self.streams})
        self._env_index = {e: i for i, e in enumerate(self.env_ids)}
        self.probs = self._weights()
        # what `rng.choice(len(streams), p=probs)` computes on every call (a pass over every
        # stream: windows/s fell with the runs), once; the same draws from the same generator
        self._cdf = self.probs.cumsum()
        self._cdf /= self._cdf[-1]
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cache_bytes, self._cache_limit = 0, cache_bytes

    def drop(self, run_id: str, why: str) -> None:
        """Sample no more from `run_id` (damaged: `why`); a `StoreError` when none is left."""
        self.dropped[run_id] = why
        self.streams = [s for s in self.streams if s.run_id != run_id]
        for key in [k for k in self._cache if k[0] == run_id]:
            self._cache_bytes -= self._cache.pop(key).nbytes
        if not self.streams:
            raise StoreError(
                f"store {self.store.path}: every run left to sample is damaged (dropped "
                f"{sorted(self.dropped)}); run `ldm data verify {self.store.path}`"
            )
        self.probs = self._weights()  # env_ids stay: they index the model's env table
        self._cdf = self.probs.cumsum()
        self._cdf /= self._cdf[-1]

    def _first_episodes(self, k: int) -> list[StreamRef]:
        """The streams cut to the prefixes holding each env's first `k` episodes."""
        by_env: dict[str, dict[str, list[int]]] = {}
        for s in self.streams:
            by_env.setdefault(s.env_id, {}).setdefault(s.run_id, []).append(s.stream)
        kept: list[StreamRef] = []
        for env_id, runs in by_env.items():
            # the episodes' metadata, which the sampler's light readers leave out
            inputs = [
                (rid, self.store.open_run(rid).meta, streams) for rid, streams in runs.items()
            ]
            for cut in first_episodes(env_id, sorted(inputs, key=lambda x: x[0]), k):
                library = next(s.library for s in self.streams if s.env_id == env_id)
                kept.append(StreamRef(cut.run_id, cut.stream, env_id, library, cut.stop))
        return kept

    def _weights(self) -> np.ndarray:
        lengths = np.array([s.length for s in self.streams], dtype=np.float64)
        if self.weighting == "uniform":
            return lengths / lengths.sum()
        w = np.zeros(len(self.streams))
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(self.streams):
            key = (s.library,) if self.weighting == "library" else (s.env_id,)
            groups.setdefault(key, []).append(i)
        for idx in groups.values():
            if self.weighting == "library":  # then every env of the library alike
                by_env: dict[str, list[int]] = {}
                for i in idx:
                    by_env.setdefault(self.streams[i].env_id, []).append(i)
                for env_idx in by_env.values():
                    sub = lengths[env_idx]
                    w[env_idx] = sub / sub.sum() / len(by_env)
            else:
                sub = lengths[idx]
                w[idx] = sub / sub.sum()
        return w / w.sum()

    # -- reading with a chunk cache -------------------------------------------------------------
    def _read(self, ref: StreamRef, column: str, start: int, stop: int) -> np.ndarray:
        # opened once per column by the reader (a legacy column is hashed whole then)
        col = self.readers[ref.run_id].column(ref.stream, column)
        chunk = col.chunk
        parts = []
        for c in range(start // chunk, (stop - 1) // chunk + 1):
            key = (ref.run_id, ref.stream, column, c)
            block = self._cache.get(key)
            if block is None:
                block = col.read(c * chunk, (c + 1) * chunk)  # DamagedRunError if it fails
                self._cache[key] = block
                self._cache_bytes += block.nbytes
                while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._cache_bytes -= old.nbytes
            else:
                self._cache.move_to_end(key)
            lo = max(start, c * chunk) - c * chunk
            hi = min(stop, (c + 1) * chunk) - c * chunk
            parts.append(block[lo:hi])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def window(self, ref: StreamRef, end: int) -> Window:
        """The tokenized window of transitions [end - L, end) of a stream (left-padded)."""
        start = max(0, end - self.window_len)
        reader = self.readers[ref.run_id]
        cols = {c: self._read(ref, c, start, end) for c in COLUMNS}
        if self.targets == "actions" or (
            self.targets == "reference_or_actions" and not reader.has_reference_actions()
        ):
            targets = cols["actions"]
        else:
            targets = self._read(ref, "ref_actions", start, end)
        w = tokenize_window(
            reader.obs_spec,
            reader.act_spec,
            cols["obs"],
            cols["actions"],
            cols["rewards"],
            cols["terminated"],
            cols["truncated"],
            targets=targets,
            pad_to=self.window_len,
        )
        return w._replace(env_index=np.asarray(self._env_index[ref.env_id]))

    def sample(self, rng: np.random.Generator) -> Window:
        """One window; with on_bad_run="drop", a damaged run is dropped and another drawn."""
        while True:
            ref = self.streams[int(self._cdf.searchsorted(rng.random(), side="right"))]
            end = int(rng.integers(1, ref.length + 1))
            try:
                return self.window(ref, end)
            except DamagedRunError as e:
                if self.on_bad_run == "stop":
                    raise
                self.drop(e.run_id, str(e))

    def batch(self, batch_size: int, seed: int, rank: int, index: int) -> Batch:
        """Batch number `index` of `rank`: deterministic in (seed, rank, index)."""
        rng = np.random.default_rng([seed, rank, index])
        return collate([self.sample(rng) for _ in range(batch_size)])
