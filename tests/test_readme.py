"""The README's commands run as written: every `ldm ...` line of its bash blocks parses with
the real CLI (the command's function replaced by one that records its arguments), the files
and env ids it names exist, the cheap ones run for real, and every `make` target it names
exists."""

from __future__ import annotations

import functools
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ldm import cli
from ldm.envs.library.registry import list_envs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: commands cheap enough to run for real here (no training, no env venv to build)
RUN_FOR_REAL = ("ldm envs list", "ldm --version", "ldm run configs/suite.toml --dry-run")


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of one language."""
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def commands(program: str) -> list[str]:
    """Every command of the bash blocks that runs `program` (`a && b` is two), without its
    trailing comment."""
    lines = [ln.split("  #")[0].strip() for b in blocks("bash") for ln in b.splitlines()]
    parts = [p.strip() for ln in lines for p in ln.split("&&")]
    return [p for p in parts if p.split(" ", 1)[0] == program]


@pytest.fixture(autouse=True)
def _catalog_path_restored():
    """`--catalog-dir` sets $LDM_CATALOG_PATH for the process: put it back after each test."""
    from ldm.envs.library.catalog import CATALOG_PATH_ENV, load_catalog

    old = os.environ.get(CATALOG_PATH_ENV)
    yield
    if old is None:
        os.environ.pop(CATALOG_PATH_ENV, None)
    else:
        os.environ[CATALOG_PATH_ENV] = old
    load_catalog.cache_clear()


def test_the_readme_starts_with_make_quickstart_and_make_test():
    assert commands("make")[:2] == ["make quickstart", "make test"]
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    assert {c.split()[1] for c in commands("make")} <= targets


def _recording(fn, calls: list):
    @functools.wraps(fn)
    def record(*args, **kwargs):
        calls.append((fn.__name__, args, kwargs))
        return 0

    return record


@pytest.mark.parametrize("line", commands("ldm"))
def test_every_ldm_command_parses_as_written(line, monkeypatch, tmp_path):
    known = {e.id for e in list_envs()}
    libraries = {e.split("/", 1)[0] for e in known}
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = [os.path.expanduser(a) for a in shlex.split(line)[1:]]  # as the shell does
    rest = cli.take_catalog_dirs(list(argv))
    for arg in rest:
        if arg.endswith(".toml"):
            assert (ROOT / arg).is_file(), f"{line}: {arg} does not exist"
        # an env id must be one discovery took (Taxi-v3 is gone from Gymnasium 1.4)
        if "/" in arg and arg.split("/", 1)[0] in libraries:
            assert arg in known, f"{line}: {arg} is not a catalogued env"
    calls: list = []
    if rest[0] in cli.GROUPS:  # not `ldm --version`: that one runs below
        module = importlib.import_module(cli.GROUPS[rest[0]][0])
        if hasattr(module, "COMMANDS"):
            wrapped = {k: _recording(f, calls) for k, f in module.COMMANDS.items()}
            monkeypatch.setattr(module, "COMMANDS", wrapped)
        else:
            monkeypatch.setattr(module, "main", _recording(module.main, calls))
    assert cli.main(argv) == 0, line
    assert len(calls) == (1 if rest[0] in cli.GROUPS else 0), line


@pytest.mark.parametrize("line", RUN_FOR_REAL)
def test_the_cheap_commands_run(line):
    assert line in commands("ldm")
    proc = subprocess.run(
        [sys.executable, "-m", "ldm.cli", *shlex.split(line)[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()


def test_the_python_blocks_compile():
    for code in blocks("python"):
        compile(code, str(README), "exec")
