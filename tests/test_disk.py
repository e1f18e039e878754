"""A full disk (ldm/disk.py), on a small tmpfs that fills up: each writer of finished work
says which path and how much space, leaves nothing that looks complete, and a rerun after
space is freed finishes with nothing lost and nothing twice. The tmpfs tests need root (mount)
and are slow."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ldm.data import Store
from ldm.data.verify import verify_store
from ldm.disk import on_full_disk
from ldm.errors import DiskFullError
from tests.data.conftest import DISC, VEC, record


class SmallDisk:
    """A tmpfs mounted at `path`; `fill(leave)` leaves `leave` bytes free, `free()` frees."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        path.mkdir()
        p = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if p.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip()}): needs root")

    def fill(self, leave: int) -> None:
        free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
        with open(self.path / "filler", "wb") as f:
            f.write(b"\0" * max(0, free - leave))

    def free(self) -> None:
        (self.path / "filler").unlink()

    def unmount(self) -> None:
        # lazily when busy (a failed test's traceback may hold a file open): never left mounted
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(self.path)], check=True)


@pytest.fixture
def disk(tmp_path):
    d = SmallDisk(tmp_path / "disk", "8m")
    yield d
    d.unmount()


@pytest.fixture
def big_disk(tmp_path):  # a tiny model's checkpoint (weights, AdamW state) is ~27 MB
    d = SmallDisk(tmp_path / "disk", "96m")
    yield d
    d.unmount()


@pytest.mark.slow
def test_a_reference_job_on_a_full_disk_commits_nothing_and_reruns_once(disk):
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.jobs import Job, policy_path, run_job

    cand = {c.name: c for c in load_pool()}["ppo-8env"]
    store = disk.path / "store"
    job = Job("train", "classic-control/CartPole-v1", "classic-control", cand, 512, 0, str(store))
    Store(store)
    disk.fill(leave=320 << 10)  # the run takes ~1 MB here: it starts, then fills the disk
    with pytest.raises(DiskFullError, match=f"run {job.run_id} at {store}: it needs about"):
        run_job(job)
    s = Store(store)
    assert s.runs() == {} and s.pending() == []
    assert not policy_path(store, job.run_id).with_suffix(".tmp.zip").exists()
    disk.free()
    out = run_job(job)
    assert list(Store(store).runs()) == [out.run_id] and out.transitions == 512
    assert Store(store).open_run(out.run_id).meta.relabelled
    assert verify_store(Store(store)) == {}


@pytest.mark.slow
def test_relabelling_on_a_full_disk_leaves_the_run_unrelabelled_then_finishes(disk):
    store = Store(disk.path / "store")
    rid = record(
        store, "a/Vec-v0", VEC, DISC, steps=20000, streams=2, relabel=False, chunk_steps=4096
    )
    actions = [store.open_run(rid).read(k, "actions") for k in range(2)]
    disk.fill(leave=16 << 10)
    with pytest.raises(DiskFullError, match=f"reference actions of run {rid} at .*{rid}"):
        store.write_reference_columns(rid, dict(enumerate(actions)), {"relabelled": True})
    run = store.open_run(rid)
    assert not run.has_reference_actions() and not run.meta.relabelled
    assert not (run.path / "data.zarr" / "s0" / "ref_actions").exists()
    disk.free()
    store.write_reference_columns(rid, dict(enumerate(actions)), {"relabelled": True})
    assert np.array_equal(store.open_run(rid).read(1, "ref_actions"), actions[1])
    assert verify_store(store) == {}


@pytest.mark.slow
def test_training_on_a_full_disk_keeps_whole_checkpoints_then_resumes(big_disk, tmp_path):
    from ldm.train import train
    from tests.train.test_loop import cfg

    store = Store(tmp_path / "store")
    record(store, "a/Vec-v0", VEC, DISC, steps=200, streams=2, seed=1)
    out = big_disk.path / "out"
    c = cfg(store, out, steps=6, checkpoint_every=3, val_every=0, keep_checkpoints=5)
    train(cfg(store, tmp_path / "probe", steps=3, checkpoint_every=3, val_every=0))
    size = sum(f.stat().st_size for f in (tmp_path / "probe" / "checkpoints").rglob("*"))
    big_disk.fill(leave=size // 2 + (64 << 10))  # room for the logs, not for a checkpoint
    with pytest.raises(DiskFullError, match=f"checkpoint step 3 at {out}/checkpoints"):
        train(c, progress=False)
    ckpts = out / "checkpoints"
    assert [p.name for p in ckpts.iterdir()] == []  # no half checkpoint, no temp dir
    assert not (out / "final").exists() and not (out / "done.json").exists()
    big_disk.free()
    train(c, progress=False)
    assert [p.name for p in sorted(ckpts.iterdir())] == ["step-0000003", "step-0000006"]
    assert json.loads((out / "done.json").read_text())["step"] == 6
    assert (out / "final" / "model.safetensors").exists()
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps.count(6) >= 1 and sorted(set(steps)) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_an_evaluation_report_on_a_full_disk_writes_no_results_json_then_does(disk):
    from ldm.eval import EvalConfig
    from ldm.eval.report import write_report
    from ldm.eval.results import EnvResult, EvalResult
    from ldm.eval.scores import summarise

    envs = tuple(
        EnvResult(f"lib/E{i}-v0", "ok", normalised_score=float(i), mean_return=1.0)
        for i in range(200)
    )
    results = EvalResult("ldm", "s", EvalConfig(), envs, summarise(envs))
    out = disk.path / "eval"
    disk.fill(leave=8 << 10)
    with pytest.raises(DiskFullError, match=f"the evaluation report at {out}: it needs about"):
        write_report(results, out)
    assert not (out / "results.json").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temp file
    disk.free()
    write_report(results, out)
    assert len(json.loads((out / "results.json").read_text())["envs"]) == 200


def test_a_full_disk_in_any_form_is_named_with_path_and_space(tmp_path):
    import errno

    for raised in (
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"),
    ):
        with pytest.raises(DiskFullError) as e, on_full_disk(tmp_path, 3 << 30, "a thing"):
            raise raised
        assert f"no space left for a thing at {tmp_path}: it needs about 3 GiB" in str(e.value)
        assert "free there; free at least" in str(e.value)
    with pytest.raises(ValueError), on_full_disk(tmp_path, 1, "a thing"):
        raise ValueError("not a disk error")
