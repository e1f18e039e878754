"""The `ldm` command itself (ldm/cli.py): --version, and output that pipes into other tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ldm import __version__
from ldm.envs.library.registry import list_envs

ROOT = Path(__file__).resolve().parents[1]


def _ldm(*args: str) -> subprocess.CompletedProcess:
    """`ldm ARGS` with its stdout a pipe, as in `ldm ... | grep ...`."""
    return subprocess.run(
        [sys.executable, "-m", "ldm.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_version():
    proc = _ldm("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"ldm {__version__}")


def test_envs_list_piped_keeps_every_id_whole_on_one_line():
    """`ldm envs list | grep CartPole` finds every CartPole id: piped, the table is plain
    tab-separated lines (a rich table folds long ids mid-word at any width)."""
    proc = _ldm("envs", "list")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    ids = {line.split("\t")[0] for line in lines if not line.startswith("#")}
    assert {e.id for e in list_envs()} <= ids
    cartpole = [line for line in lines if "CartPole" in line]
    assert "classic-control/CartPole-v1\tcontinuous(4,)\tdiscrete(2)\tok" in cartpole
    assert len(cartpole) == sum("CartPole" in e.id for e in list_envs())
    assert lines[-1].startswith("total: ") and lines[-1].count("\t") == 6  # 7 columns
