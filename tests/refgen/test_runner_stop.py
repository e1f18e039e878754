"""A stopped `ldm` leaves no job running: SIGTERM (clean stop) and SIGKILL (the kernel's
parent-death signal) both end the job processes and their env workers."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(d.name))
    return out


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for c in tree.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_run_leaves_no_job_or_env_worker_behind(tmp_path, sig):
    store = tmp_path / "store"
    code = textwrap.dedent(
        f"""
        from dataclasses import asdict
        from ldm.cli import _sigterm_as_interrupt
        from ldm.refgen.candidates import load_pool
        from ldm.refgen.jobs import Job
        from ldm.refgen.runner import run_jobs

        _sigterm_as_interrupt()
        cand = {{c.name: c for c in load_pool()}}["ppo-8env"]
        job = Job("train", "classic-control/CartPole-v1", "classic-control", asdict(cand),
                  10_000_000, 0, {str(store)!r})
        run_jobs([job], workers=1, progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 120
        pending = store / ".pending"
        while time.time() < deadline and not (pending.exists() and any(pending.iterdir())):
            assert proc.poll() is None, "the run ended before its job started"
            time.sleep(0.5)
        time.sleep(2)  # the job is stepping its env workers
        family = _descendants(proc.pid)
        assert len(family) >= 2, family  # the job process and at least one env worker
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
        deadline = time.time() + 60
        while time.time() < deadline and any(_alive(p) for p in family):
            time.sleep(0.5)
        assert not [p for p in family if _alive(p)], "processes outlived the stopped run"
    finally:
        if proc.poll() is None:
            proc.kill()
