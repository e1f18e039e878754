"""Training on a store with damaged runs (issue 33): stop naming the run, or drop it and go on."""

import json
import subprocess
import sys

import pytest

from ldm.data import Store
from tests.data.conftest import damaged_store

FAST = ["--preset", "ldm-tiny", "--steps", "3", "--batch-size", "16", "--micro-batch", "8"]
FAST += ["--window", "32", "--model", "context", "32", "--threads", "1", "--num-workers", "1"]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("bad") / "store")
    return store, *damaged_store(store)


def ldm_train(store, out, *extra):
    cmd = [sys.executable, "-m", "ldm.cli", "train", "--store", str(store.path), "--out", str(out)]
    return subprocess.run(cmd + FAST + list(extra), capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # ~30-50 s on 2 busy cores: a real `ldm train` process
def test_training_stops_with_one_line_naming_the_run_the_column_and_verify(damaged, tmp_path):
    store, _, bad = damaged
    p = ldm_train(store, tmp_path / "out")
    assert p.returncode == 1, p.stderr
    (line,) = [x for x in p.stderr.splitlines() if x.startswith("ldm train: error:")]
    rid = next(r for r in bad if f"run {r} " in line)
    assert f"column {bad[rid].split('/')[1]}" in line and "ldm data verify" in line
    assert not (tmp_path / "out" / "final").exists()


@pytest.mark.slow
def test_on_bad_run_drop_skips_each_damaged_run_says_so_and_counts_it(damaged, tmp_path):
    store, _, bad = damaged
    p = ldm_train(store, tmp_path / "out", "--on-bad-run", "drop")
    assert p.returncode == 0, p.stderr
    told = [x for x in p.stderr.splitlines() if x.startswith("dropped damaged run")]
    assert sorted(x.split()[3] for x in told) == sorted(bad)
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [x["data/dropped_runs"] for x in lines if "data/dropped_runs" in x][-1] == 3
    ckpt = json.loads((tmp_path / "out" / "done.json").read_text())
    assert ckpt["step"] == 3
