"""ldm/data/index.py: the sampler starts from the manifest's stream index without opening a
run; stores written before the index, and stale entries, are handled."""

import json

import numpy as np
import pytest

from ldm.data import WindowSampler
from ldm.data.index import reindex
from ldm.data.store import RunReader
from ldm.data.upgrade import upgrade_store
from ldm.data.verify import verify_store
from ldm.errors import StoreError

from .conftest import BOXA, DISC, VEC, record


@pytest.fixture
def runs(store):
    for i in range(6):
        record(store, f"lib{i % 2}/Env{i}-v0", VEC, DISC if i % 3 else BOXA, steps=40 + 10 * i,
               streams=1 + i % 2, seed=i)  # fmt: skip
    return store


@pytest.fixture
def opened(monkeypatch):
    """The run ids whose meta.json a RunReader reads, in order."""
    seen: list[str] = []
    real = RunReader.__init__

    def counting(self, path, episodes=True):
        seen.append(path.name)
        real(self, path, episodes)

    monkeypatch.setattr(RunReader, "__init__", counting)
    return seen


def _strip_index(store):
    """The manifest as ldm wrote it before it held stream lengths."""
    data = json.loads(store.manifest_path.read_text())
    for entry in data["runs"].values():
        del entry["stream_lengths"], entry["reference_actions"]
    store.manifest_path.write_text(json.dumps(data))


def test_the_sampler_starts_without_opening_a_run_and_opens_only_those_it_draws(runs, opened):
    s = WindowSampler(runs, window_len=8, holdout="train")
    assert opened == []
    # the streams are the runs' own: lengths from meta.json, the held-out last stream left out
    for ref in s.streams:
        assert ref.length == runs.open_run(ref.run_id).length(ref.stream)
    assert sorted((r.run_id, r.stream) for r in s.streams) == sorted(
        (rid, 0) for rid in runs.runs()
    )
    opened.clear()
    rng, drawn = np.random.default_rng([0, 0, 0]), set()  # batch (seed 0, rank 0, index 0)'s
    for _ in range(3):
        ref = s.streams[int(s._cdf.searchsorted(rng.random(), side="right"))]
        drawn.add(ref.run_id)
        rng.integers(1, ref.length + 1)
    s.batch(3, seed=0, rank=0, index=0)
    assert opened == s.readers.opened and set(opened) == drawn  # each opened once


def test_a_store_without_the_index_samples_the_same_by_opening_runs_until_upgraded(runs, opened):
    with_index = WindowSampler(runs, window_len=8, weighting="env")
    expected = with_index.batch(4, seed=1, rank=0, index=2)
    _strip_index(runs)
    opened.clear()
    old = WindowSampler(runs, window_len=8, weighting="env")
    assert sorted(opened) == sorted(runs.runs())  # as before the index: every run opened
    assert old.streams == with_index.streams and np.array_equal(old.probs, with_index.probs)
    for x, y in zip(old.batch(4, seed=1, rank=0, index=2), expected):
        assert (x is None and y is None) or np.array_equal(x, y)
    report = upgrade_store(runs)
    assert sorted(report.reindexed) == sorted(runs.runs())
    opened.clear()
    WindowSampler(runs, window_len=8)
    assert opened == []


def test_a_stale_entry_is_an_error_naming_the_run_and_the_fix(runs):
    rid = next(iter(runs.runs()))
    data = json.loads(runs.manifest_path.read_text())
    data["runs"][rid]["stream_lengths"] = [n + 5 for n in data["runs"][rid]["stream_lengths"]]
    runs.manifest_path.write_text(json.dumps(data))
    s = WindowSampler(runs, window_len=8, runs=[rid])  # start-up trusts the manifest
    with pytest.raises(StoreError, match=rf"run {rid} .*ldm data upgrade"):
        s.batch(2, seed=0, rank=0, index=0)
    assert list(verify_store(runs)) == [rid] and "ldm data upgrade" in verify_store(runs)[rid][0]
    assert reindex(runs) == [rid] and reindex(runs) == []
    WindowSampler(runs, window_len=8, runs=[rid]).batch(2, seed=0, rank=0, index=0)


def test_an_entry_lagging_its_relabelling_is_checked_in_the_run(store, opened):
    rid = record(store, "lib/Env-v0", VEC, DISC, steps=30, relabel=False)
    bare = record(store, "lib/Bare-v0", VEC, DISC, steps=30, relabel=False)
    reader = store.open_run(rid)
    for k in range(2):  # written as a crash after meta.json, before the manifest, leaves it
        store._write_columns(reader, {k: reader.read(k, "actions")})
    meta = json.loads((reader.path / "meta.json").read_text())
    meta["checksums"].update(
        {f"s{k}/ref_actions": meta["checksums"][f"s{k}/actions"] for k in range(2)}
    )
    (reader.path / "meta.json").write_text(json.dumps(meta))
    assert store.runs()[rid].reference_actions is False
    opened.clear()
    s = WindowSampler(store, window_len=8, runs=[rid])
    assert opened == [rid]  # the entry said no reference actions: the run was asked
    s.batch(2, seed=0, rank=0, index=0)
    with pytest.raises(StoreError, match=rf"run {bare} .*no reference actions"):
        WindowSampler(store, window_len=8)
    WindowSampler(store, window_len=8, targets="reference_or_actions")
