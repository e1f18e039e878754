"""Hostile environment code is contained by the bubblewrap sandbox, with clear errors."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.proxy import ProxyEnv
from ldm.errors import EnvError

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)"
)

HOSTILE = Path(__file__).parent / "hostile"


@pytest.fixture
def spec():
    return LibrarySpec(
        name="hostile",
        domain="test",
        requirements=["gymnasium==1.4.0", "numpy>=2"],
        imports=["hostile_envs"],
        python_path=[str(HOSTILE)],
        path=str(HOSTILE / "hostile.toml"),
    )


def _attack(spec, attack, **kwargs):
    env = ProxyEnv(spec, f"Hostile-{attack}-v0", sandbox=True, timeout=60, **kwargs)
    try:
        env.reset(seed=0)
        with pytest.raises(EnvError) as info:
            env.step(0)
        return str(info.value)
    finally:
        env.close()


def test_network_is_blocked(spec):
    msg = _attack(spec, "socket")
    assert (
        "hostile/Hostile-socket-v0" in msg
        and "Network is unreachable" in msg
        and "no network" in msg
    )


def test_writes_outside_scratch_are_blocked(spec):
    target = Path(__file__).parent / "hostile" / "pwned.txt"
    msg = _attack(spec, "write", target=str(target))
    assert "Read-only file system" in msg
    assert not target.exists()


def test_the_home_directory_is_invisible(spec):
    secret = Path.home() / ".ldm-sandbox-test-secret"
    secret.write_text("secret")
    try:
        msg = _attack(spec, "read_home", target=str(secret))
        assert "No such file or directory" in msg
    finally:
        secret.unlink()


def test_the_project_directory_is_invisible(spec, monkeypatch):
    # outside /tmp and the home directory, which are hidden anyway
    project = Path(tempfile.mkdtemp(prefix="ldm-project-", dir="/var/tmp"))
    try:
        (project / "runs" / "store").mkdir(parents=True)
        secret = project / "runs" / "store" / "manifest.json"
        secret.write_text("{}")
        monkeypatch.chdir(project)  # the client runs from its project, where its stores live
        msg = _attack(spec, "read_home", target=str(secret))
        assert "No such file or directory" in msg
    finally:
        shutil.rmtree(project)


def test_fork_bomb_is_stopped(spec):
    msg = _attack(spec, "fork")
    assert "Hostile-fork-v0" in msg and ("Resource temporarily unavailable" in msg or "died" in msg)


def test_memory_bomb_is_stopped(spec):
    msg = _attack(spec, "memory")
    assert "Hostile-memory-v0" in msg and ("MemoryError" in msg or "died" in msg)


def test_well_behaved_envs_run_sandboxed_and_the_client_goes_on(spec):
    import ldm.envs as E

    _attack(spec, "socket")
    env = E.make("classic-control/CartPole-v1", sandbox=True)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4,)
        assert np.isfinite(env.step(1)[0]).all()
    finally:
        env.close()


def test_the_worker_starts_with_a_cleared_environment(spec, monkeypatch):
    from dataclasses import replace

    monkeypatch.setenv("LDM_TEST_API_TOKEN", "s3cret")  # a secret in the user's shell
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # on the allowlist
    monkeypatch.setenv("LDM_TEST_LIB_DATA", "/data/lib")  # asked for by the spec below
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")  # would break the library's venv
    env = ProxyEnv(replace(spec, pass_env=["LDM_TEST_LIB_*"]), "Hostile-environ-v0", sandbox=True)
    try:
        env.reset(seed=0)
        seen = env.step(0)[4]["environ"]
        scratch = str(env._worker.conn.scratch)
    finally:
        env.close()
    assert "LDM_TEST_API_TOKEN" not in seen and "s3cret" not in str(seen)
    assert "PYTHONPATH" not in seen
    assert seen["HOME"] == scratch and seen["TMPDIR"] == scratch
    assert seen["OMP_NUM_THREADS"] == "1" and seen["LDM_TEST_LIB_DATA"] == "/data/lib"
    assert seen["PATH"] and seen["MUJOCO_GL"] == "egl"


@pytest.mark.parametrize("where", ["scratch", "/tmp"])
def test_scratch_space_is_capped_and_the_error_names_the_limit(spec, monkeypatch, where):
    monkeypatch.setenv("LDM_SANDBOX_SCRATCH_MB", "16")
    env = ProxyEnv(
        spec, "Hostile-fill-v0", sandbox=True, target="" if where == "scratch" else where
    )
    scratch = env._worker.conn.scratch
    try:
        env.reset(seed=0)
        with pytest.raises(EnvError) as info:
            env.step(0)
        msg = str(info.value)
        assert "No space left on device" in msg and "Hostile-fill-v0" in msg
        assert "scratch 16 MiB" in msg and "LDM_SANDBOX_SCRATCH_MB" in msg
        assert list(scratch.iterdir()) == [scratch / ".owner"]  # the writes stayed in the tmpfs
    finally:
        env.close()
    assert not scratch.exists()


def test_hidden_directories_are_read_only(spec):
    target = Path.home() / "ldm-sandbox-fill"
    msg = _attack(spec, "write", target=str(target))
    assert "Read-only file system" in msg and not target.exists()


def test_a_bad_scratch_size_is_named(spec, monkeypatch):
    monkeypatch.setenv("LDM_SANDBOX_SCRATCH_MB", "lots")
    with pytest.raises(EnvError, match="LDM_SANDBOX_SCRATCH_MB is 'lots'.*e.g. 2048"):
        ProxyEnv(spec, "Hostile-none-v0", sandbox=True)


def test_a_fresh_empty_group_of_a_live_client_is_kept_a_dead_clients_goes(tmp_path):
    import os
    import subprocess
    import time

    from ldm.envs.transport.sandbox import STALE_GROUP_SECONDS, _left_over

    dead = subprocess.Popen(["true"])
    dead.wait()
    mine = tmp_path / f"ldm-sandbox-{os.getpid()}-0123abcd"
    gone = tmp_path / f"ldm-sandbox-{dead.pid}-0123abcd"
    old_style = tmp_path / "ldm-sandbox-0123abcd"
    for d in (mine, gone, old_style):
        d.mkdir()
    # a worker launched next to another must find its group still there when it joins it
    assert not _left_over(mine) and _left_over(gone) and not _left_over(old_style)
    past = time.time() - STALE_GROUP_SECONDS - 5
    os.utime(mine, (past, past))
    os.utime(old_style, (past, past))
    assert _left_over(mine) and _left_over(old_style)
