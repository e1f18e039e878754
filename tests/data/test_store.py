import gc
import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ldm.data import Store, anchors, resume_run
from ldm.data.verify import store_stats, verify_store
from ldm.errors import StoreError
from ldm.spaces import SpaceSpec

from .conftest import BOXA, DISC, IMG, VEC, record  # noqa: F401


def test_run_round_trip_with_streams_episodes_and_anchors(store):
    rid = record(store, "lib/Vec-v0", VEC, DISC, steps=200, streams=2)
    r = store.open_run(rid)
    assert r.num_streams == 2 and r.length(0) == r.length(1) == 200
    assert r.read(0, "obs").shape == (200, 3) and r.read(1, "actions").dtype == np.int64
    assert len(r.meta.episode_returns) == 20  # 10 episodes per stream
    first, last = anchors(r.meta.episode_returns)
    assert (r.meta.first10, r.meta.last10) == (first, last) and last > first
    entry = store.runs()[rid]
    assert entry.transitions == 400 and entry.verdict == "pass"
    assert (entry.env_id, entry.library, entry.streams) == ("lib/Vec-v0", "lib", 2)
    # manifest.json keeps its form: every key of the entry, null included
    on_disk = json.loads(store.manifest_path.read_text())["runs"][rid]
    assert on_disk == entry.to_dict() and set(on_disk) == {
        "env_id", "library", "transitions", "streams", "verdict", "relabelled", "algorithm",
        "committed", "stream_lengths", "reference_actions",
    }  # fmt: skip
    assert on_disk["stream_lengths"] == [200, 200] and on_disk["reference_actions"] is True


def test_a_manifest_entry_with_an_unknown_or_missing_key_is_an_error(store):
    rid = record(store, "lib/Vec-v0", VEC, DISC, steps=20)
    data = json.loads(store.manifest_path.read_text())
    data["runs"][rid]["verdcit"] = "pass"
    store.manifest_path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=r"unknown keys \['verdcit'\]"):
        store.runs()
    del data["runs"][rid]["verdcit"], data["runs"][rid]["transitions"]
    store.manifest_path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="manifest entry of lib/Vec-v0 is malformed"):
        store.runs()


def test_anchors_are_means_of_first_and_last_tenth():
    assert anchors(list(range(20))) == (0.5, 18.5)
    assert anchors([3.0]) == (3.0, 3.0)
    with pytest.raises(StoreError, match="no finished episode"):
        anchors([])


def test_bad_arrays_fail_at_write_time_before_commit(store):
    w = store.create_run("lib/Vec-v0", "lib", VEC, DISC, num_streams=2)
    with pytest.raises(StoreError, match=r"obs has shape \(2, 4\), expected \(2, 3\)"):
        w.append(np.zeros((2, 4)), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    with pytest.raises(StoreError, match="NaN or inf"):
        w.append(np.full((2, 3), np.nan), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    w.abort()
    assert store.runs() == {} and store.pending() == []


def test_the_writer_keeps_what_was_appended_when_the_caller_changes_its_arrays(store):
    # SB3 adds a truncated episode's bootstrapped value to the rewards array it got from the
    # env, in place, after the step was recorded: the store must keep the env's reward
    w = store.create_run("lib/Vec-v0", "lib", VEC, DISC, num_streams=2, chunk_steps=8)
    obs, acts = np.zeros((2, 3), np.float32), np.zeros(2, np.int64)
    rewards, flags = np.ones(2, np.float32), np.zeros(2, bool)
    for _ in range(3):
        w.append(obs, acts, rewards, flags, flags)
        rewards += 49.0
        obs += 1.0
        acts += 1
    reader = store.open_run(w.commit())
    assert reader.read(0, "rewards").tolist() == [1.0, 50.0, 99.0]
    assert reader.read(1, "obs")[:, 0].tolist() == [0.0, 1.0, 2.0]
    assert reader.read(1, "actions").tolist() == [0, 1, 2]


def test_pending_run_is_invisible_then_resumed_or_discarded(store):
    w = store.create_run("lib/Vec-v0", "lib", VEC, DISC, num_streams=1, run_id="r1", chunk_steps=10)
    for _ in range(25):
        w.append(np.zeros((1, 3)), np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1))
    assert store.runs() == {} and store.pending() == ["r1"]
    del w  # the writer dies (its run lock goes with its process's file)
    gc.collect()
    w2 = resume_run(store, "r1")  # the 20 flushed steps survive, the 5 buffered are lost
    for _ in range(5):
        w2.append(np.zeros((1, 3)), np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1))
    w2.commit()
    assert store.open_run("r1").length(0) == 25
    assert verify_store(store) == {}
    w3 = store.create_run("lib/Vec-v0", "lib", VEC, DISC, num_streams=1, run_id="r2")
    w3.append(np.zeros((1, 3)), np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1))
    with pytest.raises(StoreError, match="r2 .* is being written by pid"):
        store.discard_run("r2")  # not while its writer lives
    del w3
    gc.collect()
    store.discard_run("r2")
    assert store.pending() == []


def test_chunks_hold_about_a_mebibyte_of_observations(store):
    from ldm.data.writer import default_chunk_steps

    grid = SpaceSpec("image", (7, 7, 3), "uint8")  # a MiniGrid grid: 147 bytes a step
    wide = SpaceSpec("continuous", (376,), low=(-1.0,) * 376, high=(1.0,) * 376)
    assert default_chunk_steps(IMG) == 64  # 64x64 RGB: 12 KB a step
    assert default_chunk_steps(SpaceSpec("image", (210, 160, 3), "uint8")) == 64  # at least 64
    assert default_chunk_steps(grid) == 4096  # at most 4096
    assert default_chunk_steps(VEC) == 4096
    assert default_chunk_steps(wide) == 512  # 1,504 bytes a step
    w = store.create_run("lib/Grid-v0", "lib", grid, DISC, num_streams=2, run_id="g")
    assert w.chunk_steps == 4096
    for _ in range(3):
        w.append(np.zeros((2, 7, 7, 3)), np.zeros(2), np.ones(2), np.zeros(2), np.zeros(2))
    w.flush()
    del w  # the writer dies
    gc.collect()
    r2 = resume_run(store, "g")  # resumes with the chunks it was created with
    assert r2.chunk_steps == 4096
    r2.commit()
    assert store.open_run("g").array(1, "obs").chunks == (4096, 7, 7, 3)
    w = store.create_run("lib/Vec-v0", "lib", VEC, DISC, num_streams=1, run_id="v", chunk_steps=8)
    w.flush()
    del w
    gc.collect()
    assert resume_run(store, "v").chunk_steps == 8


def test_kill_9_of_the_writer_leaves_no_readable_half_run(store):
    code = textwrap.dedent(
        f"""
        import numpy as np, sys
        from ldm.data import Store
        from ldm.spaces import SpaceSpec
        s = Store({str(store.path)!r})
        spec = SpaceSpec("continuous", (3,), low=(-5.0,)*3, high=(5.0,)*3)
        w = s.create_run("lib/Vec-v0", "lib", spec, SpaceSpec("discrete", (), "int64", n=4), 1, chunk_steps=8)
        i = 0
        while True:
            w.append(np.zeros((1, 3)), np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1))
            i += 1
            if i == 100:
                print("writing", flush=True)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert store.runs() == {} and len(store.pending()) == 1
    assert store.reconcile() == []


def test_relabel_column_written_after_the_run_without_touching_obs(store):
    rid = record(store, "lib/Vec-v0", VEC, BOXA, steps=50, streams=1, relabel=False, verdict=None)
    before = (store.path / "runs" / rid / "data.zarr" / "s0" / "obs").stat().st_mtime_ns
    store.write_reference_actions(rid, 0, np.zeros((50, 2), np.float32))
    after = (store.path / "runs" / rid / "data.zarr" / "s0" / "obs").stat().st_mtime_ns
    assert before == after
    assert store.open_run(rid).has_reference_actions()
    with pytest.raises(StoreError, match="expected"):
        store.write_reference_actions(rid, 0, np.zeros((49, 2), np.float32))


def test_verify_names_a_corrupted_chunk_and_stats_count(store):
    good = record(store, "lib/Vec-v0", VEC, DISC, steps=100, streams=1)
    bad = record(store, "lib/Img-v0", IMG, DISC, steps=40, streams=1)
    chunk = next((store.path / "runs" / bad / "data.zarr" / "s0" / "obs").rglob("c/0/*/*/*"))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    problems = verify_store(store)
    assert list(problems) == [bad] and "s0/obs" in problems[bad][0]
    s = store_stats(store)
    assert s["runs"] == 2 and s["envs"] == 2 and s["transitions"] == 140
    assert set(s["bytes_per_transition"]) == {"continuous", "image"}
    assert good in store.runs()


def test_cli_verify_exit_code(store, capsys):
    from ldm.cli import main

    record(store, "lib/Vec-v0", VEC, DISC, steps=30, streams=1)
    assert main(["data", "verify", str(store.path)]) == 0
    assert main(["data", "stats", str(store.path), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(out)["transitions"] == 30


def test_minari_export_import_round_trip(store, tmp_path, monkeypatch):
    from ldm.data.minari_io import export_minari, import_minari
    from tests.data.conftest import record

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    rid = record(store, "lib/Vec-v0", VEC, BOXA, steps=60, streams=2)
    src = store.open_run(rid)
    assert export_minari(str(store.path), "lib/Vec-v0", "ldm/vec/ref-v0").episodes == 6
    dest = Store(tmp_path / "imported")
    import_minari("ldm/vec/ref-v0", str(dest.path), env_id="lib/Vec-v0")
    runs = dest.runs(curated_only=True)
    assert len(runs) == 6  # 2 streams x 3 episodes of 20 steps
    first = dest.open_run(sorted(runs)[0])
    assert first.meta.first10 == src.meta.first10 and first.meta.last10 == src.meta.last10
    lengths = sorted(first.length(0) for first in (dest.open_run(r) for r in runs))
    assert lengths == [20] * 6
    got = np.concatenate(
        [
            dest.open_run(r).read(0, "obs")
            for r in sorted(runs, key=lambda r: int(r.rsplit("-", 1)[1]))
        ]
    )
    want = np.concatenate([src.read(0, "obs"), src.read(1, "obs")])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ref = np.concatenate(
        [
            dest.open_run(r).read(0, "ref_actions")
            for r in sorted(runs, key=lambda r: int(r.rsplit("-", 1)[1]))
        ]
    )
    np.testing.assert_allclose(
        ref, np.concatenate([src.read(0, "ref_actions"), src.read(1, "ref_actions")]), rtol=1e-6
    )


def test_run_metadata_is_a_validated_record_with_an_unchanged_file(store):
    from ldm.data import Curation, RunMeta

    rid = record(store, "a/Vec-v0", VEC, DISC, steps=30, streams=2, seed=3)
    path = store.path / "runs" / rid / "meta.json"
    raw = json.loads(path.read_text())
    meta = store.open_run(rid).meta
    assert isinstance(meta, RunMeta) and meta.env_id == "a/Vec-v0" and meta.num_streams == 2
    assert meta.observation_space == VEC and meta.curation == Curation("pass")
    assert sum(meta.stream_lengths) == meta.transitions == 60
    assert [e.return_ for e in meta.episodes] == list(meta.episode_returns)
    assert RunMeta.from_dict(raw).to_dict() == raw  # the file's form round-trips exactly
    # an older file without the optional keys still reads
    old = {k: v for k, v in raw.items() if k not in ("relabelled", "curation", "first10", "last10")}
    assert RunMeta.from_dict(old).curation is None
    with pytest.raises(StoreError, match="verdict 'passed' is not one of"):
        store.update_meta(rid, {"curation": {"verdict": "passed"}})
    with pytest.raises(StoreError, match="curation has unknown keys"):
        store.update_meta(rid, {"curation": {"verdict": "pass", "reason": ["typo"]}})
    assert json.loads(path.read_text()) == raw  # a rejected update leaves the file as it was
    store.update_meta(rid, {"curation": Curation("fail", ("no improvement",))})
    assert store.runs()[rid].verdict == "fail"
    assert json.loads(path.read_text())["curation"] == {
        "verdict": "fail",
        "reasons": ["no improvement"],
    }


@pytest.mark.parametrize("command", ["stats", "verify"])
def test_read_only_commands_on_a_folder_that_is_no_store_write_nothing(tmp_path, capsys, command):
    from ldm.cli import main

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert main(["data", command, str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{folder} is not a trajectory store (it has no manifest.json)" in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]  # no .lock, runs/, ...
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "absent", create=False)
    assert not (tmp_path / "absent").exists()


def test_opening_a_store_read_only_creates_nothing_in_it(store):
    record(store, "a/Vec-v0", VEC, DISC, steps=40, streams=1)
    shutil.rmtree(store.path / ".pending")
    before = sorted(p.relative_to(store.path) for p in store.path.rglob("*"))
    ro = Store(store.path, create=False)
    assert len(ro.runs()) == 1 and ro.pending() == []
    assert sorted(p.relative_to(store.path) for p in store.path.rglob("*")) == before


def test_a_second_process_writing_the_same_run_is_refused_until_the_first_commits(store):
    """Two real processes, as two machines on a shared filesystem would be: the second can
    neither write, resume nor discard the run the first is writing; once committed, it is
    committed once."""
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from ldm.data import Store
        from tests.data.conftest import VEC, DISC
        w = Store({str(store.path)!r}).create_run("lib/Vec-v0", "lib", VEC, DISC, run_id="r")
        w.append(np.zeros((1, 3)), np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1))
        w.flush()
        print("writing", flush=True)
        sys.stdin.readline()
        w.commit()
        """
    )
    first = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],  # the repository: `tests` imports
    )
    try:
        assert first.stdout.readline() == "writing\n"
        held = f"run r in {store.path} is being written by pid {first.pid} on "
        with pytest.raises(StoreError, match=held):
            store.create_run("lib/Vec-v0", "lib", VEC, DISC, run_id="r")
        with pytest.raises(StoreError, match=held):
            resume_run(store, "r")
        with pytest.raises(StoreError, match=held):
            store.discard_run("r")
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
    assert list(store.runs()) == ["r"] and store.pending() == []
    with pytest.raises(StoreError, match="already committed"):
        store.create_run("lib/Vec-v0", "lib", VEC, DISC, run_id="r")


def test_reconcile_registers_many_runs_in_one_manifest_write(store, monkeypatch):
    # one manifest write per run rewrote a file of every run each time: time ~ runs squared
    rids = [record(store, f"a/E{i}-v0", VEC, DISC, steps=8, streams=1, relabel=False,
                   verdict=None) for i in range(4)]  # fmt: skip
    for rid in rids:
        store.set_manifest_entry(rid, None)  # committed, but the manifest lost them
    writes = []
    real = Store.set_manifest_entries
    monkeypatch.setattr(
        Store, "set_manifest_entries", lambda s, e: (writes.append(len(e)), real(s, e))
    )
    assert store.reconcile() == sorted(rids)
    assert writes == [4] and sorted(store.runs()) == sorted(rids)


def test_a_reader_without_episodes_holds_no_per_episode_metadata(store):
    rid = record(store, "a/E-v0", VEC, DISC, steps=60, streams=1)
    full, light = store.open_run(rid), store.open_run(rid, episodes=False)
    assert len(full.meta.episodes) == 3 and len(full.meta.episode_returns) == 3
    assert light.meta.episodes == () and light.meta.episode_returns == ()
    assert light.length(0) == 60 and light.has_reference_actions()
