"""Worker lifetime and environment (ldm/envs/backends.py): a script that forgets close(), the
variables a worker sees, and its scratch directory on every exit path."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CARTPOLE = "classic-control/CartPole-v1"


def _python(
    code: str, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with this checkout first on the path."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )


def gone(pid: int) -> bool:
    """True when `pid` no longer runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def processes_in(directory: str) -> list[int]:
    """Pids of the processes whose working directory is `directory` (workers run in their scratch)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "cwd") == directory:
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


FORGETFUL = """
    import json, sys
    import ldm.envs as e
    backend, sandbox = sys.argv[1], sys.argv[2] == "1"
    v = e.make_vec("classic-control/CartPole-v1", 2, backend=backend, sandbox=sandbox)
    v.reset(seed=0)
    conns = [w.conn for w in v._workers]
    print(json.dumps({
        "pids": [c.proc.pid for c in conns if hasattr(c, "proc")],
        "scratch": [str(c.scratch) for c in conns if hasattr(c, "scratch")],
    }), flush=True)
"""

BACKENDS = [
    ("inprocess", False),
    ("process", False),
    pytest.param(
        "process",
        True,
        id="sandbox",
        marks=pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap missing"),
    ),
]


def _docker_ready() -> bool:
    from ldm.envs.docker import engine_running

    return engine_running()


@pytest.mark.parametrize("backend,sandbox", BACKENDS)
def test_a_script_that_forgets_close_exits_0_and_leaves_no_worker(backend, sandbox):
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORGETFUL), backend, "1" if sandbox else "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Fatal Python error" not in proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if backend != "inprocess":
        assert len(info["pids"]) == 2
    assert all(gone(pid) for pid in info["pids"])
    for scratch in info["scratch"]:
        assert not Path(scratch).exists(), f"scratch dir {scratch} left behind"
        assert processes_in(scratch) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_a_script_that_forgets_close_exits_0():
    if not _docker_ready():
        pytest.skip("no Docker engine answers")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORGETFUL), "docker", "0"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(gone(pid) for pid in info["pids"])


HOSTILE = Path(__file__).parent / "hostile"


@pytest.fixture
def hostile_spec():
    from ldm.envs.catalog import LibrarySpec

    return LibrarySpec(
        name="hostile",
        domain="test",
        requirements=["gymnasium==1.4.0", "numpy>=2"],
        imports=["hostile_envs"],
        python_path=[str(HOSTILE)],
        path=str(HOSTILE / "hostile.toml"),
    )


def _worker_environ(spec, monkeypatch, **variables) -> dict:
    from ldm.envs.proxy import ProxyEnv

    for k, v in variables.items():
        monkeypatch.setenv(k, v)
    env = ProxyEnv(spec, "Hostile-environ-v0")
    try:
        env.reset(seed=0)
        return env.step(0)[4]["environ"]
    finally:
        env.close()


def test_a_process_worker_gets_the_allowlist_not_the_shells_secrets(hostile_spec, monkeypatch):
    seen = _worker_environ(
        hostile_spec,
        monkeypatch,
        LDM_TEST_API_TOKEN="s3cret",
        LC_ALL="C.UTF-8",
        PYTHONPATH="/somewhere/else",
        LDM_WORKER_PASS_ENV="LDM_TEST_EXTRA",
        LDM_TEST_EXTRA="yes",
    )
    assert "LDM_TEST_API_TOKEN" not in seen and "PYTHONPATH" not in seen
    assert seen["LC_ALL"] == "C.UTF-8" and seen["LDM_TEST_EXTRA"] == "yes"
    assert seen["HOME"] == str(Path.home())  # not sandboxed: caches in the home stay usable


def test_worker_environment_allowlist_and_spec_additions(hostile_spec, monkeypatch, tmp_path):
    from dataclasses import replace

    from ldm.envs.workerenv import worker_environment

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("MYLIB_LICENSE", "abc")
    monkeypatch.setenv("LC_CTYPE", "C.UTF-8")
    monkeypatch.delenv("LDM_WORKER_PASS_ENV", raising=False)
    base = worker_environment(hostile_spec, tmp_path, sandboxed=True)
    assert "AWS_SECRET_ACCESS_KEY" not in base and "MYLIB_LICENSE" not in base
    assert base["LC_CTYPE"] == "C.UTF-8" and base["HOME"] == str(tmp_path)
    more = worker_environment(replace(hostile_spec, pass_env=["MYLIB_*"]), tmp_path, True)
    assert more["MYLIB_LICENSE"] == "abc" and "AWS_SECRET_ACCESS_KEY" not in more
