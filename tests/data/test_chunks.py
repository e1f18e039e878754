"""ldm.data.chunks: every chunk a reader takes is checked; damage is an error, never data."""

import json

import numpy as np
import pytest

from ldm.cli import main
from ldm.data import WindowSampler
from ldm.data.upgrade import rewrite_run
from ldm.data.verify import verify_store
from ldm.errors import DamagedRunError, StoreError

from .conftest import DISC, VEC, damage, damaged_store, record


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
@pytest.mark.parametrize("encoding", ["checked", "legacy"])
def test_a_damaged_chunk_is_an_error_naming_run_column_and_verify(store, how, encoding):
    rid = record(store, "a/Vec-v0", VEC, DISC, steps=200, streams=1, chunk_steps=64)
    if encoding == "legacy":
        rewrite_run(store, rid, checked=False)  # as written before per-chunk checksums
    clean = store.open_run(rid).read(0, "obs")
    damage(store, rid, "s0/obs", how, chunk=1)
    with pytest.raises(DamagedRunError, match=f"run {rid} stream 0 column obs") as e:
        store.open_run(rid).read(0, "obs")
    assert "ldm data verify" in str(e.value) and str(store.path) in str(e.value)
    if encoding == "checked":  # per chunk: the other chunks still read, the bad one is named
        reader = store.open_run(rid)
        assert np.array_equal(reader.read(0, "obs", 0, 64), clean[:64])
        with pytest.raises(DamagedRunError, match="chunk 1 (is missing|failed its check)"):
            reader.read(0, "obs", 60, 70)
    assert list(verify_store(store)) == [rid]


def test_every_chunk_is_stored_even_one_equal_to_the_fill_value(store):
    rid = record(store, "a/Vec-v0", VEC, DISC, steps=200, streams=1, chunk_steps=64)
    chunks = store.path / "runs" / rid / "data.zarr" / "s0" / "truncated" / "c"
    assert sorted(p.name for p in chunks.iterdir()) == ["0", "1", "2", "3"]  # all False
    assert store.open_run(rid).legacy_columns() == []
    damage(store, rid, "s0/truncated", "delete", chunk=2)
    with pytest.raises(DamagedRunError, match="chunk 2 is missing"):
        store.open_run(rid).read(0, "truncated")


def test_upgrade_adds_checksums_in_place_and_leaves_a_damaged_run(store, capsys):
    good = record(store, "a/Vec-v0", VEC, DISC, steps=200, streams=2, seed=1)
    bad = record(store, "b/Vec-v0", VEC, DISC, steps=200, streams=2, seed=2)
    before = {r: store.open_run(r).read(1, "ref_actions") for r in (good, bad)}
    sums = {r: store.open_run(r).meta.checksums for r in (good, bad)}
    for r in (good, bad):
        rewrite_run(store, r, checked=False)
        assert len(store.open_run(r).legacy_columns()) == 12
    damage(store, bad, "s0/rewards", "flip")
    assert main(["data", "verify", str(store.path)]) == 1
    assert "1 good runs have no per-chunk checksum" in capsys.readouterr().out
    assert main(["data", "upgrade", str(store.path)]) == 1  # the damaged run is named
    out = capsys.readouterr().out
    assert f"{good}: upgraded" in out and f"{bad}: DAMAGED, left as it was" in out
    assert store.open_run(good).legacy_columns() == []
    assert len(store.open_run(bad).legacy_columns()) == 12
    assert np.array_equal(store.open_run(good).read(1, "ref_actions"), before[good])
    meta = json.loads((store.path / "runs" / good / "meta.json").read_text())
    assert meta["checksums"] == sums[good]  # same bytes: the fingerprint does not move
    assert sorted(p.name for p in (store.path / "runs" / good).iterdir()) == [
        "data.zarr",
        "meta.json",
    ]
    assert main(["data", "upgrade", str(store.path)]) == 1
    assert f"{good}: already checked" in capsys.readouterr().out


@pytest.fixture
def three_damaged(store):
    return damaged_store(store)


def test_the_sampler_stops_or_drops_and_never_returns_a_damaged_window(store, three_damaged):
    good, bad = three_damaged
    stop = WindowSampler(store, 16, weighting="env")
    with pytest.raises(DamagedRunError, match="ldm data verify"):
        for i in range(20):
            stop.batch(8, 0, 0, i)
    drop = WindowSampler(store, 16, weighting="env", on_bad_run="drop")
    envs = set()
    for i in range(20):  # every window drawn after the drops comes from the good run
        envs |= {drop.env_ids[e] for e in drop.batch(8, 0, 0, i).env_index.tolist()}
    assert envs == {"good/Vec-v0"} and sorted(drop.dropped) == sorted(bad)
    assert all(bad[r].split("/")[1] in why for r, why in drop.dropped.items())
    only_bad = WindowSampler(store, 16, runs=list(bad), on_bad_run="drop")
    with pytest.raises(StoreError, match="every run left to sample is damaged"):
        for i in range(20):
            only_bad.batch(8, 0, 0, i)


def test_a_loader_worker_tells_its_drops_and_a_resumed_loader_keeps_them(store, three_damaged):
    from ldm.data import WindowLoader

    _, bad = three_damaged
    loader = WindowLoader(store, 16, 8, weighting="env", num_workers=1, on_bad_run="drop")
    for _ in range(10):
        next(loader)
    assert sorted(loader.dropped) == sorted(bad)  # told by the worker process
    state = json.loads(json.dumps(loader.state_dict()))  # as a checkpoint keeps it
    resumed = WindowLoader(store, 16, 8, weighting="env", num_workers=0, on_bad_run="drop")
    resumed.load_state_dict(state)
    assert {s.run_id for s in resumed.sampler.streams}.isdisjoint(bad)
