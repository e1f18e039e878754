"""Poll-before-block wake-ups for the shared-memory step path: a side that expects the other
side's byte soon polls its descriptor for a bounded time, and blocks on it only after that.

Why: a reader blocked on a pipe lets its core halt, and the writer's byte then wakes it with
an inter-processor interrupt; on a VM (this project's machines: 2 vCPUs under Firecracker)
waking a halted vCPU costs ~20 us each way, more than stepping four CartPoles (one worker
with 8 CartPoles: 156 us per batch step blocking, 81 us with both sides polling). A reader
that is polling is not halted, so the byte wakes nobody.

Polling must not take a core that an env or the client needs, so it is bounded and adaptive:
- at most `budget` seconds from the moment the request went out (`start`), then the blocking
  read as before;
- not at all while recent waits exceed the budget (a running average of waits, each clipped at
  twice the budget): a heavy env, or a client busy with its own work (PPO's update), turns it
  off by itself, and it comes back once waits are short again;
- every empty poll yields the CPU (`sched_yield`): another runnable process on that core runs
  first, and when one did (the yield took over CONTENDED) the machine has no core to spare:
  the wait blocks at once and polling stays off until waits are short again (two reference
  jobs on 2 cores, each a client and a worker, block as before). A worker whose vector env's
  workers fill the cores (`shares_core`) shares one with its client: a yield after which the
  answer is there was the client's turn, not contention;
- the client sets the budgets per vector env (`ldm.envs.transport.shm.poll_budgets`): none where the
  workers it waits on already fill the cores, and `LDM_POLL_US=0` turns polling off.

Imports: standard library only, Python 3.6 syntax (runs in each library's venv).
"""

import os
import select
import time

AVERAGE_WEIGHT = 0.25  # of the newest wait in the running average
CONTENDED = 30e-6  # a yield that took longer let another process run


class Poller:
    """Polls one FrameReader's descriptor before its owner blocks on it (see the docstring)."""

    def __init__(self, budget, shares_core=False):
        self.budget = float(budget)  # seconds; 0 never polls
        # the other side may run on this core (a worker of a vector env whose workers fill
        # the cores): a yield it took is its turn, not contention, when its answer came
        self.shares_core = shares_core
        self.average = 0.0  # of recent waits, each clipped at twice the budget
        self.since = time.perf_counter()
        self._fd = None
        self._poll = None

    def start(self):
        """The request went out now: the wait for its answer starts."""
        self.since = time.perf_counter()

    def wait(self, reader):
        """Poll `reader`'s descriptor until bytes arrive (appended to `reader.buf`) or the
        budget is spent; the caller then reads as usual (blocking, or taking the bytes
        buffered). Raises EOFError when the other side closed."""
        if reader.buf or self.budget <= 0 or self.average > self.budget:
            return
        if reader.fd != self._fd:  # first use, or the channel moved (Docker's FIFOs)
            self._fd = reader.fd
            self._poll = select.poll()
            self._poll.register(reader.fd, select.POLLIN)
        poll, clock, pause = self._poll.poll, time.perf_counter, os.sched_yield
        end = self.since + self.budget
        while not poll(0):
            now = clock()
            if now > end:
                return
            pause()
            if clock() - now > CONTENDED and not (self.shares_core and poll(0)):
                # another process needed this core: block
                self.average = 2 * self.budget  # and poll again only after short waits
                return
        chunk = os.read(self._fd, 1 << 16)
        if not chunk:
            raise EOFError("stream closed")
        reader.buf += chunk

    def arrived(self):
        """The answer came: its wait goes into the running average."""
        waited = min(time.perf_counter() - self.since, 2 * self.budget)
        self.average += AVERAGE_WEIGHT * (waited - self.average)
