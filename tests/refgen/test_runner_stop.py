"""A stopped `ldm` leaves no job running: SIGTERM (clean stop) and SIGKILL (the kernel's
parent-death signal) both end the job processes and their env workers."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.procs import alive, descendants


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_run_leaves_no_job_or_env_worker_behind(tmp_path, sig):
    store = tmp_path / "store"
    code = textwrap.dedent(
        f"""
        from ldm.cli import _sigterm_as_interrupt
        from ldm.refgen.candidates import load_pool
        from ldm.refgen.jobs import Job
        from ldm.refgen.runner import run_jobs

        _sigterm_as_interrupt()
        cand = {{c.name: c for c in load_pool()}}["ppo-8env"]
        job = Job("train", "classic-control/CartPole-v1", "classic-control", cand,
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
        family = descendants(proc.pid)
        assert len(family) >= 2, family  # the job process and at least one env worker
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
        deadline = time.time() + 60
        while time.time() < deadline and any(alive(p) for p in family):
            time.sleep(0.5)
        assert not [p for p in family if alive(p)], "processes outlived the stopped run"
    finally:
        if proc.poll() is None:
            proc.kill()
