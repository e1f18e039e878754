"""The store's stream index: what the sampler needs of every run, from the manifest alone.

The sampler needs, per run, its streams' lengths (the windows' ends and the weights) and
whether every stream has reference actions. Manifest entries carry both (`ManifestEntry.
stream_lengths`, `.reference_actions`, written with the run's metadata in one manifest
update), so at 10,000 runs the sampler starts from one file instead of 10,000 meta.json
files. A run's reader (its spaces, its columns) is opened the first time a window is drawn
from it (`LazyReaders`).

Old stores, whose entries lack the lengths, still work: `stream_index` opens those runs, as the
sampler always did, and `ldm data upgrade` writes the lengths (`reindex`). A stale entry, one
whose lengths differ from the run's meta.json when the run is opened, is a `StoreError`
naming the run and `ldm data upgrade`, never a window read past a stream's end.

Owns: `RunStreams`, `stream_index`, `LazyReaders`, `reindex`. Imports ldm.data.store/meta and
ldm.errors; never torch, ldm.model or an environment library.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from ldm.data.meta import ManifestEntry, RunMeta
from ldm.data.store import RunReader, Store
from ldm.errors import StoreError


class RunStreams(NamedTuple):
    """What the sampler knows of a run before it reads any of it."""

    lengths: tuple[int, ...]
    """Transitions per stream."""
    reference_actions: bool
    """Every stream has a reference-action column."""
    opened: bool
    """The run's meta.json was read to learn this (its manifest entry did not say)."""


def stream_index(
    store: Store, entries: dict[str, ManifestEntry], need_reference: bool
) -> dict[str, RunStreams]:
    """Per run of `entries`: its stream lengths and reference columns, from the entry where
    it holds them, else from the run's metadata. `need_reference`: a run whose entry says it
    has no reference actions is opened to confirm (an entry can lag its meta.json by one
    crash), so that the sampler's error names a run that really lacks them."""
    out = {}
    for rid, e in entries.items():
        known = e.stream_lengths is not None and e.reference_actions is not None
        if known and (e.reference_actions or not need_reference):
            out[rid] = RunStreams(e.stream_lengths, bool(e.reference_actions), False)  # type: ignore[arg-type]
        else:
            reader = store.open_run(rid, episodes=False)
            lengths = tuple(reader.length(k) for k in range(reader.num_streams))
            out[rid] = RunStreams(lengths, reader.has_reference_actions(), True)
    return out


class LazyReaders(Mapping[str, RunReader]):
    """Run id -> its light reader (`episodes=False`), opened on first access and kept; a run
    whose meta.json disagrees with the index's lengths is a `StoreError`."""

    def __init__(self, store: Store, index: dict[str, RunStreams]) -> None:
        self.store, self.index = store, index
        self._open: dict[str, RunReader] = {}

    def __getitem__(self, run_id: str) -> RunReader:
        reader = self._open.get(run_id)
        if reader is None:
            if run_id not in self.index:
                raise KeyError(run_id)
            reader = self.store.open_run(run_id, episodes=False)
            lengths = tuple(reader.length(k) for k in range(reader.num_streams))
            if lengths != self.index[run_id].lengths:
                raise StoreError(
                    f"run {run_id} of {self.store.path}: the manifest says its streams hold "
                    f"{list(self.index[run_id].lengths)} transitions, its meta.json "
                    f"{list(lengths)}; rebuild the manifest's index with "
                    f"`ldm data upgrade {self.store.path}`"
                )
            self._open[run_id] = reader
        return reader

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def opened(self) -> list[str]:
        """The run ids whose reader is open."""
        return list(self._open)


def reindex(store: Store) -> list[str]:
    """Rewrite the manifest entries that differ from their runs' meta.json (those written
    before manifests held stream lengths, or left stale), in one manifest update; returns
    the run ids rewritten. Opens every run: `ldm data upgrade` calls it once per store."""
    changed = {}
    for rid, entry in store.runs().items():
        path = store.path / "runs" / rid / "meta.json"
        fresh = RunMeta.from_dict(json.loads(path.read_text())).manifest_entry()
        if fresh != entry:
            changed[rid] = fresh
    if changed:
        store.set_manifest_entries(changed)  # type: ignore[arg-type]
    return sorted(changed)


__all__ = ["LazyReaders", "RunStreams", "reindex", "stream_index"]
