"""Fixtures shared by several test packages: a local Ray head started as a cluster user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.procs import children

# Git-only libraries (growspace, gym-inventory, ...) install from the source trees beside the
# repository (`../shared/envlibs`, as CI lays it out), for every test package: the suite smoke
# test builds them too. Machines without that folder clone from git instead.
_MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "envlibs"
if _MIRROR.is_dir():
    os.environ.setdefault("LDM_SOURCE_MIRROR", str(_MIRROR))


@dataclass(frozen=True)
class RayHead:
    address: str
    """host:port, what `RAY_ADDRESS` holds for the drivers."""
    port: int
    """The head's GCS port (Ray reports the node's IP address, not 127.0.0.1)."""
    temp_dir: Path
    """Ray's --temp-dir: its sessions, logs and sockets; only this head's processes use it."""
    tmpdir: Path
    """$TMPDIR of the head's processes (and so of every worker and actor it starts)."""

    def env(self) -> dict[str, str]:
        """The environment of a driver process that uses this cluster."""
        return {**os.environ, "RAY_ADDRESS": self.address, "RAY_USAGE_STATS_ENABLED": "0"}

    def run_driver(self, code: str) -> dict:
        """Run `code` as a driver process of this cluster; its last stdout line, as JSON. The
        driver must report `ray.get_runtime_context().gcs_address` as "cluster": it is checked
        to be this head (not a new local Ray started by mistake)."""
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=600,
            env=self.env(),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["cluster"].rsplit(":", 1)[1] == str(self.port)
        return out

    def kill_task_worker(
        self,
        title: str,
        driver: subprocess.Popen,
        settle: float = 3.0,
        ready: Callable[[], bool] = lambda: True,
    ) -> int:
        """SIGKILL the worker process of this head running a task `title` (its process title,
        e.g. "ray::_attempt") once `ready()` holds and `settle` seconds more have passed; its
        pid. A lost worker, as a node's OOM killer or a crash leaves it."""
        deadline = time.time() + 300
        while time.time() < deadline:
            assert driver.poll() is None, "the driver ended before its task was seen running"
            for pid in ray_processes(self.temp_dir, self.port):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if cmdline.startswith(title) and ready():
                    time.sleep(settle)
                    os.kill(pid, signal.SIGKILL)
                    return pid
            time.sleep(0.2)
        raise AssertionError(f"no Ray worker ran {title} within 300 s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_head_process(args: list[str], temp_dir: Path, port: int) -> bool:
    if any(str(temp_dir) in a for a in args):
        return True
    # the Ray client server names only the head's address
    addresses = [a.split("=", 1)[1] for a in args if a.startswith(("--address=", "--gcs-address="))]
    return any(a.rsplit(":", 1)[-1] == str(port) for a in addresses)


def ray_processes(temp_dir: Path, port: int) -> list[int]:
    """Pids of the processes of the Ray head using `temp_dir` and `port`, and all their
    descendants (workers rename themselves `ray::...`: found as children of the raylet)."""
    roots = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                args = (p / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if _is_head_process(args, temp_dir, port):
                roots.append(int(p.name))
    tree, found, todo = children(), set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found and pid != os.getpid():
            found.add(pid)
            todo += tree.get(pid, [])
    return sorted(found)


@pytest.fixture(scope="session")
def ray_head():
    """`ray start --head` on a free port with its own temp dir; stopped by its own pids (never
    `ray stop`, which stops every Ray instance of the machine)."""
    if shutil.which("ray") is None and not (Path(sys.executable).parent / "ray").exists():
        pytest.skip("ray is not installed (pip install 'ldm[ray]')")
    ray_exe = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    temp_dir = Path(tempfile.mkdtemp(prefix="ldm-ray-", dir="/tmp"))  # short: socket paths
    tmpdir = temp_dir / "tmp"
    tmpdir.mkdir()
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmpdir), "RAY_USAGE_STATS_ENABLED": "0"}
    # the head's workers import ldm from this checkout
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    head = RayHead(f"127.0.0.1:{port}", port, temp_dir, tmpdir)
    argv = [ray_exe, "start", "--head", "--num-cpus=2", f"--port={port}"]
    argv += [f"--temp-dir={temp_dir}", "--include-dashboard=false", "--disable-usage-stats"]
    argv += [f"--ray-client-server-port={_free_port()}"]
    # Ray's raylet gives its metrics agent a hard-coded ~15 s to start (ray-project/ray#65983),
    # which an overloaded machine misses: the second try starts the head at real-time priority
    # (root only) and sets its processes back to normal scheduling once it is up
    boosted = os.geteuid() == 0 and shutil.which("chrt") is not None
    try:
        for prefix in ([], ["chrt", "-r", "1"] if boosted else []):
            start = subprocess.run(
                prefix + argv, capture_output=True, text=True, timeout=300, env=env
            )
            if prefix:
                for pid in ray_processes(temp_dir, port):
                    subprocess.run(["chrt", "-o", "-p", "0", str(pid)], capture_output=True)
            if start.returncode == 0 or not _agent_too_slow(temp_dir):
                break
            _stop(temp_dir, port)
        if start.returncode != 0 and _agent_too_slow(temp_dir):
            pytest.skip(
                "ray start --head failed twice: its raylet gives its metrics agent a hard-coded "
                "time to start (ray-project/ray#65983), too short on this overloaded machine"
            )
        assert start.returncode == 0, start.stdout[-2000:] + start.stderr[-2000:]
        yield head
    finally:
        _stop(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _agent_too_slow(temp_dir: Path) -> bool:
    """Whether the raylet died waiting for its metrics agent's port file (a Ray start-up race
    lost on an overloaded machine, not a failure of the code under test)."""
    for log in temp_dir.glob("session_*/logs/raylet.out"):
        if "Timed out waiting for file" in log.read_text(errors="replace"):
            return True
    return False


def _stop(temp_dir: Path, port: int) -> None:
    """Stop the processes of the head using `temp_dir` and `port`: SIGTERM, then SIGKILL."""
    pids = ray_processes(temp_dir, port)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while time.time() < deadline and not all(_gone(p) for p in pids):
            time.sleep(0.2)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")
