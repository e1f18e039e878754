"""Poll-before-block wake-ups (ldm/envs/worker/poll.py) and the budgets the client sets."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ldm.envs as E
from ldm.envs.transport import shm
from ldm.envs.worker import poll
from ldm.envs.worker.poll import Poller
from ldm.envs.worker.protocol import FrameReader
from ldm.errors import EnvError


@pytest.fixture
def pipe(monkeypatch):
    # the writer here is a thread of this process: its turn on the core must not count as
    # contention (test_a_busy_core_turns_polling_off covers that)
    monkeypatch.setattr(poll, "CONTENDED", 10.0)
    r, w = os.pipe()
    yield FrameReader(r), w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def _wait(poller: Poller, reader: FrameReader) -> float:
    t0 = time.perf_counter()
    poller.wait(reader)
    return time.perf_counter() - t0


def test_a_byte_within_the_budget_is_taken_by_polling(pipe):
    reader, w = pipe
    poller = Poller(5.0)
    poller.start()
    threading.Timer(0.02, os.write, (w, b"s")).start()
    assert _wait(poller, reader) < 4.0
    assert bytes(reader.buf) == b"s"  # read while polling: the caller's read does not block
    os.write(w, b"m")
    poller.wait(reader)  # bytes already buffered: nothing polled, nothing read
    assert bytes(reader.buf) == b"s"


def test_no_byte_within_the_budget_returns_after_it_and_eof_is_raised(pipe):
    reader, w = pipe
    poller = Poller(0.05)
    poller.start()
    assert 0.05 <= _wait(poller, reader) < 2.0
    assert not reader.buf
    os.close(w)
    poller.start()
    with pytest.raises(EOFError):
        poller.wait(reader)


def test_long_waits_turn_polling_off_and_short_ones_back_on(pipe):
    reader, _ = pipe
    poller = Poller(0.05)
    for _ in range(6):  # answers that came a second after their request
        poller.since = time.perf_counter() - 1.0
        poller.arrived()
    assert poller.average > poller.budget
    poller.start()
    assert _wait(poller, reader) < 0.05  # straight to the blocking read: no core kept busy
    for _ in range(20):  # quick answers again
        poller.start()
        poller.arrived()
    assert poller.average < poller.budget
    poller.start()
    assert _wait(poller, reader) >= 0.05  # polls for its budget again
    assert Poller(0).average == 0 and _wait(Poller(0), reader) < 0.05


def test_a_busy_core_turns_polling_off():
    r, w = os.pipe()
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    busy = subprocess.Popen(
        [sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"]
    )
    try:
        time.sleep(0.3)  # it spins on `cpu` now
        os.sched_setaffinity(0, {cpu})  # and this poller shares that core with it
        poller = Poller(500e-6)  # a yield gives the busy process a slice (ms), and no answer
        poller.start()
        poller.wait(FrameReader(r))
        assert poller.average == 2 * poller.budget  # blocks now, off until waits are short
    finally:
        os.sched_setaffinity(0, before)
        busy.kill()
        busy.wait()
        os.close(r)
        os.close(w)


def test_budgets_leave_the_cores_to_the_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.delenv(shm.POLL_ENV, raising=False)
    budget = shm.DEFAULT_POLL_US
    # a core each for client and worker
    assert shm.poll_budgets(1) == shm.PollBudgets(budget / 1e6, budget, shares_core=False)
    # the client blocks while both workers step, on a worker's core between steps
    assert shm.poll_budgets(2) == shm.PollBudgets(0.0, budget, shares_core=True)
    # workers outnumber the cores: nobody polls
    assert shm.poll_budgets(3) == shm.PollBudgets(0.0, 0.0, shares_core=True)
    monkeypatch.setenv(shm.POLL_ENV, "0")
    assert shm.poll_budgets(1)[:2] == (0.0, 0.0)
    assert shm.poll_budgets(1, 200)[:2] == (200e-6, 200)  # the argument over the variable
    monkeypatch.setenv(shm.POLL_ENV, "fast")
    with pytest.raises(EnvError, match="LDM_POLL_US='fast'.*0 .*100000"):
        shm.poll_budgets(1)
    with pytest.raises(EnvError, match="poll_us=-5.*0 .*100000"):
        E.make_vec("classic-control/CartPole-v1", 2, poll_us=-5)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_worker_blocks_after_polling(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    venv = E.make_vec("classic-control/CartPole-v1", 2, workers=1)
    try:
        conn = venv._workers[0].conn
        assert venv._workers[0].steps.poller.budget == shm.DEFAULT_POLL_US / 1e6
        venv.reset(seed=0)
        for _ in range(50):
            venv.step(np.zeros(2, dtype=np.int64))
        before = _cpu_seconds(conn.proc.pid)
        time.sleep(1.5)  # the worker polls for the next step 500 us, then blocks
        assert _cpu_seconds(conn.proc.pid) - before < 0.2
        obs, *_ = venv.step(np.zeros(2, dtype=np.int64))  # and wakes for it
        assert obs.shape == (2, 4)
    finally:
        venv.close()
