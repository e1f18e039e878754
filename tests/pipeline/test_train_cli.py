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


def test_training_on_a_model_folder_is_an_error_that_leaves_it_as_it_was(tmp_path, capsys):
    from ldm.cli import main

    model = tmp_path / "final"
    model.mkdir()
    (model / "config.json").write_text("{}")
    code = main(["train", "--store", str(model), "--out", str(tmp_path / "out"), "--steps", "1"])
    assert code == 1
    assert f"{model} is not a trajectory store" in capsys.readouterr().err
    assert sorted(p.name for p in model.iterdir()) == ["config.json"]


def test_flags_override_the_config_file(tmp_path, monkeypatch):
    """The README's cluster recipe: `ldm train --config F --store S --out O`."""
    from ldm.cli import main
    from ldm.pipeline import train_cli

    config = tmp_path / "run.toml"
    config.write_text('[train]\nstore = "from-file"\nsteps = 7\npreset = "ldm-small"\n')
    seen = []
    monkeypatch.setattr(train_cli, "main", lambda args: seen.append(args) or 0)
    argv = ["train", "--config", str(config), "--store", "S", "--out", "O", "--steps", "1000"]
    assert main(argv) == 0
    (args,) = seen
    # given flags win, also one equal to the default (--steps 1000); the rest is the file's
    assert (args.cfg.store, args.cfg.out, args.cfg.steps) == ("S", "O", 1000)
    assert args.cfg.preset == "ldm-small" and args.config == str(config)
    assert main(["train", f"--config={config}"]) == 0
    assert (seen[-1].cfg.store, seen[-1].cfg.steps) == ("from-file", 7)
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 1
