"""Shared-memory step path, client side: a worker's slice of the batch in a buffer both map.

After `make`, `attach(conn, handles, spaces, autoreset)` lays out one buffer per worker from
the space descriptions (observations, actions, rewards, terminated and truncated flags, final
observations and info slots of the worker's envs; the layout is shm_layout.py, the buffer
shm_buffer.py), asks the worker to map it (`shm_attach`), and returns a `SharedSteps`: the
step handle of ldm/envs/transport/steps.py whose `step_send` writes the actions into the buffer and
sends one signal byte, and whose `step_recv` reads one byte back when the step's infos are
in the buffer too (see worker/shm_worker.py), a framed reply when they did not fit. Resets go
framed and their observations come back in the buffer; control messages (render, close)
stay plain calls on the connection. Before blocking on the pipe each side polls it for a
bounded, adaptive time (worker/poll.py), within the budgets `poll_budgets` sets: none where
the vector env's workers already fill the cores.

Lifetime: the process and sandbox backends share an anonymous memfd (no name anywhere, gone
with the last process holding it); the Docker backend bind-mounts a file of /dev/shm that is
unlinked as soon as the worker has mapped it (and names of dead clients are swept on the next
`SharedBuffer.named()`), and two FIFOs beside it that carry the channel from then on (the
container's stdin/stdout are relayed by the engine: two more processes each way). A worker
that cannot share (in-process or Ray backends, Dict or Tuple spaces, a worker that cannot map
the buffer) keeps the framed path (`steps.FramedSteps`); the reason is logged at debug level.

Imports: numpy, ldm.envs.transport.connection/messages/process/shm_buffer/shm_layout/steps, and
ldm.envs.worker's shm_worker and poll. Must not import gymnasium or the proxies.
"""

from __future__ import annotations

import logging
import os
import select
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ldm.envs.transport import messages
from ldm.envs.transport.connection import DEFAULT_TIMEOUT, Connection, WorkerError
from ldm.envs.transport.process import ProcessConnection
from ldm.envs.transport.shm_buffer import SharedBuffer
from ldm.envs.transport.shm_layout import Layout, plan_layout
from ldm.envs.transport.steps import Final, ResetResult, StepResult, Steps
from ldm.envs.worker import poll, shm_worker
from ldm.errors import EnvError

log = logging.getLogger(__name__)

POLL_ENV = "LDM_POLL_US"  # the poll budget in microseconds (0: block at once, as before)
DEFAULT_POLL_US = 500


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class PollBudgets(NamedTuple):
    """How long each side of a vector env's shared-memory path polls (worker/poll.py)."""

    client_s: float  # the client, in seconds
    worker_us: float  # each worker, in microseconds (sent with `shm_attach`)
    shares_core: bool  # the workers fill the cores: the client runs on one of theirs


def poll_budgets(peers: int, budget_us: float | None = None) -> PollBudgets:
    """The polling of a vector env whose client waits on `peers` workers at once. The client
    polls only while a core is left beside its workers; a worker polls (yielding its core at
    each empty poll) unless the workers outnumber the cores. The budget: `budget_us`, else
    `LDM_POLL_US`, else 500; 0 turns polling off. A bad budget is an EnvError."""
    where = "poll_us" if budget_us is not None else POLL_ENV
    raw = budget_us if budget_us is not None else os.environ.get(POLL_ENV, str(DEFAULT_POLL_US))
    try:
        budget_us = float(raw)
    except ValueError:
        budget_us = -1.0
    if not 0 <= budget_us <= 100_000:
        raise EnvError(
            f"{where}={raw!r}: expected microseconds from 0 (no polling) to 100000; leave it "
            f"unset for the default {DEFAULT_POLL_US}"
        )
    cores = usable_cores()
    return PollBudgets(
        client_s=budget_us / 1e6 if peers < cores else 0.0,
        worker_us=budget_us if peers <= cores else 0.0,
        shares_core=peers >= cores,
    )


def attach(
    conn: Connection,
    handles: list[int],
    spaces: dict[str, Any],
    autoreset: bool,
    poll: PollBudgets | None = None,
) -> SharedSteps | None:
    """A shared-memory step handle on `conn`'s envs `handles`, polling by `poll` (its vector
    env's `poll_budgets`; default: a lone worker's); None (and the reason logged at debug
    level) when the buffer cannot be shared and the framed path stays."""
    buffer = getattr(conn, "buffer", None)
    if not isinstance(conn, ProcessConnection) or buffer is None:
        log.debug("%s: framed path (backend %s shares no memory)", conn.label, type(conn).__name__)
        return None
    count = len(handles)
    try:
        layout = plan_layout(spaces, count)
    except EnvError as e:
        log.debug("%s: framed path (%s)", conn.label, e)
        return None
    poll = poll or poll_budgets(1)
    buffer.map(layout.size)
    where = {"poll_us": poll.worker_us, "poll_shares_core": poll.shares_core}
    if buffer.worker_wake is not None:
        where["wake"] = list(buffer.worker_wake)
    try:
        conn.call(
            messages.shm_attach(
                layout.wire(), layout.size, autoreset, **where, **buffer.worker_ref()
            )
        )
        if buffer.wake is not None:
            conn.rebind(*_open_wake(conn, buffer.wake))
    except WorkerError as e:
        if not conn.alive or buffer.wake is not None:
            raise
        log.debug("%s: framed path (the worker could not map the buffer: %s)", conn.label, e)
        return None
    finally:
        buffer.release_name()
    log.debug(
        "%s: shared-memory path, %d envs, %d bytes, polling %.0f us (client) / %.0f us (worker)",
        conn.label,
        count,
        layout.size,
        poll.client_s * 1e6,
        poll.worker_us,
    )
    conn.buffer = None  # the handle owns it from now on (and closes it)
    return SharedSteps(conn, handles, autoreset, layout, buffer, poll.client_s)


def _open_wake(conn: ProcessConnection, paths: tuple[Path, Path], timeout: float = 60.0):
    """Open our ends of the wake-up FIFOs once the worker acknowledged `shm_attach` (it opens
    its ends then, see shm_worker.open_wake): (write fd, read fd) after its handshake byte.
    A worker that dies or never opens them is a WorkerError, not a wait without end."""
    deadline = time.time() + timeout
    try:
        w = shm_worker.open_fifo_writer(paths[0], deadline, lambda: conn.alive)
    except OSError as e:
        raise WorkerError(
            f"{conn.label}: the worker did not open its wake-up FIFO: {e}", conn.tail
        ) from None
    r = os.open(paths[1], os.O_RDONLY | os.O_NONBLOCK)
    # no writer has opened it yet, so it is not readable (no EOF) until the worker's handshake
    ready = select.select([r], [], [], max(0.0, deadline - time.time()))[0]
    if not ready or os.read(r, 1) != shm_worker.DONE:
        os.close(w)
        os.close(r)
        raise WorkerError(f"{conn.label}: no handshake on the wake-up FIFO", conn.tail)
    os.set_blocking(w, True)
    os.set_blocking(r, True)
    return w, r


class SharedSteps(Steps):
    """A step handle whose arrays live in the buffer shared with the worker: a step is the
    STEP signal after the actions are written, and the worker's signal (DONE, SLOTS) or a
    framed reply when something did not fit (see shm_worker.py). Owns the buffer (taken
    over from the connection once the worker mapped it), its views and the poller."""

    def __init__(
        self,
        conn: ProcessConnection,
        handles: list[int],
        autoreset: bool,
        layout: Layout,
        buffer: SharedBuffer,
        poll_budget: float = 0.0,
    ) -> None:
        super().__init__(conn, handles, autoreset)
        self.process = conn
        self.layout = layout
        self.buffer = buffer
        mm = buffer.mm
        self.poller = poll.Poller(poll_budget)
        self.views = {
            f.name: np.ndarray(f.shape, np.dtype(f.dtype), buffer=mm, offset=f.offset)
            for f in layout.fields
        }
        self.count = len(handles)
        self.info_keys: list[tuple[str, type]] = []  # slot order, as the worker announced them

    def step_send(self, actions: Any) -> None:
        self.views["actions"][...] = actions
        self.poller.start()
        self.process.signal(shm_worker.STEP, "step")

    def step_recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> StepResult:
        self._wait("step")
        answer = self.process.recv_signal("step", timeout)
        self.poller.arrived()
        if answer == shm_worker.DONE:
            extras: dict[str, Any] = {}
        elif answer == shm_worker.SLOTS:
            extras = shm_worker.ALL_IN_BUFFER
        elif isinstance(answer, dict):
            extras = answer
        else:
            self.process.kill()
            raise WorkerError(f"{self.conn.label}: unknown signal {answer!r} from the worker")
        v = self.views
        infos, finals = self._read_extras(extras) if extras else (None, None)
        return StepResult(
            v["obs"].copy(),
            v["rewards"].copy(),
            v["terminated"].copy(),
            v["truncated"].copy(),
            infos,
            finals,
        )

    def reset_send(self, seeds: list[int | None], options: dict | None = None) -> None:
        self.poller.start()
        super().reset_send(seeds, options)

    def reset_recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> ResetResult:
        self._wait("reset")
        result = self.conn.recv(timeout)
        self.poller.arrived()
        infos = result.get("infos") or [{} for _ in range(self.count)]
        return ResetResult(self.views["obs"].copy(), infos)

    def close(self) -> None:
        self.views = {}  # the buffer can be unmapped once no view is left
        self.buffer.close()

    def _wait(self, cmd: str) -> None:
        """Poll for the answer to `cmd` before the blocking read (worker/poll.py)."""
        try:
            self.poller.wait(self.process.reader)
        except (EOFError, OSError):
            raise self.process.dead(cmd) from None

    def _read_extras(self, result: dict[str, Any]) -> tuple[list[dict] | None, list | None]:
        """Infos and final observations of a step: from the buffer, or framed when they did
        not fit its slots."""
        v = self.views
        if "info_keys" in result:
            self.info_keys = [
                (name, shm_worker.INFO_TYPES[kind]) for name, kind in result["info_keys"]
            ]
        ended = np.flatnonzero(v["final"]).tolist()
        if "infos" in result:
            infos, final_infos = result["infos"], result["final_infos"]
        else:
            infos = self._slot_infos(v["info_values"], v["info_present"])
            final_infos = (
                self._slot_infos(v["final_info_values"], v["final_info_present"]) if ended else None
            )
        finals: list[Final | None] | None = None
        if ended:
            finals = [None] * self.count
            for i in ended:
                info = final_infos[i] if final_infos is not None else None
                finals[i] = Final(v["final_obs"][i].copy(), info or {})
        return (infos if infos is not None and any(infos) else None), finals

    def _slot_infos(self, values: np.ndarray, present: np.ndarray) -> list[dict] | None:
        """Per env the info dict held in the slots, or None when no slot is set (a few keys
        of a few envs: plain Python over lists beats numpy calls per key)."""
        k = len(self.info_keys)
        flags = present[:, :k].tolist()
        if not any(map(any, flags)):
            return None
        return [
            {name: kind(x) for (name, kind), x, p in zip(self.info_keys, row, has) if p}
            for row, has in zip(values[:, :k].tolist(), flags)
        ]
