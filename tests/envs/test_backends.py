"""Worker lifetime and environment (ldm/envs/transport/backends.py, process.py): a script that forgets close(), the
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


def _python(code: str, env: dict | None = None, timeout: float = 120, background: bool = False):
    """Run `code` in a fresh interpreter with this checkout first on the path (a Popen with
    pipes when `background`, else its CompletedProcess)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    argv = [sys.executable, "-c", textwrap.dedent(code)]
    if background:
        return subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=full_env, cwd=ROOT
        )
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT
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
    from ldm.envs.transport.docker import engine_running

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
    from ldm.envs.library.catalog import LibrarySpec

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

    from ldm.envs.transport.workerenv import worker_environment

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("MYLIB_LICENSE", "abc")
    monkeypatch.setenv("LC_CTYPE", "C.UTF-8")
    monkeypatch.delenv("LDM_WORKER_PASS_ENV", raising=False)
    base = worker_environment(hostile_spec, tmp_path, sandboxed=True)
    assert "AWS_SECRET_ACCESS_KEY" not in base and "MYLIB_LICENSE" not in base
    assert base["LC_CTYPE"] == "C.UTF-8" and base["HOME"] == str(tmp_path)
    more = worker_environment(replace(hostile_spec, pass_env=["MYLIB_*"]), tmp_path, True)
    assert more["MYLIB_LICENSE"] == "abc" and "AWS_SECRET_ACCESS_KEY" not in more


def test_a_dead_workers_scratch_is_removed_at_once(faulty_spec):
    from ldm.envs.proxy import ProxyEnv
    from ldm.errors import EnvError

    env = ProxyEnv(faulty_spec, "Faulty-crash-v0")
    scratch = env._worker.conn.scratch
    try:
        env.reset(seed=0)
        assert scratch.is_dir()
        with pytest.raises(EnvError, match="died"):
            for _ in range(3):
                env.step(0)
        assert not scratch.exists()  # before close(): the client may never call it
    finally:
        env.close()


def test_a_worker_that_cannot_start_leaves_no_scratch(hostile_spec, monkeypatch, tmp_path):
    import tempfile

    from ldm.envs.transport.process import ProcessConnection

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        ProcessConnection("x", tmp_path / "no-such-python", hostile_spec)
    assert list(tmp_path.glob("ldm-worker-*")) == []


def test_scratch_of_a_killed_client_is_removed_by_the_next_one(tmp_path):
    killed = _python(
        """
        import os, signal
        import ldm.envs as e
        env = e.make("classic-control/CartPole-v1")
        env.reset(seed=0)
        conn = env._worker.conn
        (conn.scratch / "state.bin").write_bytes(b"x" * 1000)
        print(conn.scratch, conn.proc.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        env={"TMPDIR": str(tmp_path)},
    )
    assert killed.returncode == -9
    scratch, pid = killed.stdout.split()
    stale = Path(scratch)
    assert stale.parent == tmp_path and (stale / "state.bin").exists()
    os.utime(stale, (0, 0))  # older than the grace period for a client still locking its dir
    # a live client's dir, just as old, is kept
    live = _python(
        """
        import os, sys, time
        import ldm.envs as e
        env = e.make("classic-control/CartPole-v1")
        os.utime(env._worker.conn.scratch, (0, 0))
        print(env._worker.conn.scratch, flush=True)
        sys.stdin.read()  # until the test is done
        """,
        env={"TMPDIR": str(tmp_path)},
        background=True,
    )
    try:
        kept = Path(live.stdout.readline().strip())
        assert not stale.exists()  # cleaned by this client's first worker
        nxt = _python(
            """
            import ldm.envs as e
            e.make("classic-control/CartPole-v1").close()
            """,
            env={"TMPDIR": str(tmp_path)},
        )
        assert nxt.returncode == 0, nxt.stderr
        assert kept.is_dir()
    finally:
        live.stdin.close()
        live.wait(timeout=60)
    assert list(tmp_path.glob("ldm-worker-*")) == []
    assert gone(int(pid))


def test_a_forked_child_exiting_leaves_its_parents_workers_alone():
    proc = _python(
        """
        import os
        import ldm.envs as e
        env = e.make("classic-control/CartPole-v1")
        env.reset(seed=0)
        if os.fork() == 0:
            raise SystemExit(0)  # a normal exit of the child: its at-exit hooks run
        os.waitpid(-1, 0)
        print(env.step(1)[0].shape, env._worker.conn.scratch.is_dir())
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["(4,)", "True"]
