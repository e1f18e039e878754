"""`ldm train` from the command line (ldm/pipeline/train_cli.py): errors are one line, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ldm.data import Store
from tests.data.conftest import DISC, VEC, record

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a torch start-up and a DataLoader worker process (~15 s idle, more loaded)
def test_training_on_a_corrupted_store_prints_one_error_line(tmp_path):
    """A loader worker's error arrives as the one CLI line naming the run and the fix (torch
    would print the worker's traceback); without workers it always did."""
    store = Store(tmp_path / "store")
    run_id = record(store, "a/Vec-v0", VEC, DISC, steps=200, streams=1, seed=1)
    for chunk in (store.path / "runs" / run_id / "data.zarr" / "s0" / "obs").rglob("c/*/*"):
        chunk.write_bytes(chunk.read_bytes()[:9])  # truncated: the chunk cannot be decoded
    proc = subprocess.run(
        [sys.executable, "-m", "ldm.cli", "train", "--store", str(store.path)]
        + ["--out", str(tmp_path / "out"), "--preset", "ldm-tiny", "--window", "32"]
        + ["--steps", "2", "--batch-size", "4", "--micro-batch", "4", "--val-every", "0"]
        + ["--num-workers", "1", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ldm train: error: ")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "DataLoader worker" not in proc.stderr
    assert run_id in errors[0] and f"ldm data verify {store.path}" in errors[0]
    assert not (tmp_path / "out" / "final").exists()
