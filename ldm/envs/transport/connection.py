"""Connections: a client's request/response channel to one env worker, whatever carries it.

`Connection` (the interface, plain request/response: `send(message)` then `recv(timeout)`,
so that several workers can work in parallel, `call`, `close`, `alive`, `wait_fd`),
`WorkerError` (what a died, hung or failing worker raises, with the tail of its stderr) and
`InProcessConnection` (the worker's `EnvServer` in this process). The process connection is
ldm/envs/transport/process.py; backends.py picks one per backend. Stepping goes through a step handle
on a connection (ldm/envs/transport/steps.py).

Imports the worker's protocol and ldm.errors; the worker's server only inside
`InProcessConnection`. Must not import backends, the process, shm, sandbox, Ray or Docker
modules (they import this one), gymnasium, an environment library or torch.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from ldm.envs.worker import protocol
from ldm.errors import EnvError

WORKER_SCRIPT = Path(__file__).parent.parent / "worker" / "server.py"
DEFAULT_TIMEOUT = 60.0


class WorkerError(EnvError):
    """The worker died, hung or raised; `tail` holds the end of its stderr."""

    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message + (f"\n--- worker stderr (tail) ---\n{tail}" if tail else ""))
        self.tail = tail


class Connection:
    """Base class: request/response over some transport."""

    label = "?"
    hint = ""  # appended to errors (e.g. what the sandbox blocks)
    paths: list[str] | None = None  # where the spec's python_path dirs are, seen by the worker

    def send(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        raise NotImplementedError

    def call(self, message: dict[str, Any], timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        self.send(message)
        return self.recv(timeout)

    def close(self) -> None:
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        return True

    def wait_fd(self) -> int | None:
        """A descriptor that becomes readable when the next reply arrives, or None when a
        reply can be taken without waiting on one (it is buffered, or there is no such fd)."""
        return None

    def _unwrap(self, reply: dict[str, Any], message_cmd: str) -> Any:
        if not reply.get("ok"):
            raise WorkerError(
                f"{self.label}: worker failed on {message_cmd!r}: {reply.get('error')}{self.hint}",
                reply.get("traceback", ""),
            )
        return reply.get("result")


class InProcessConnection(Connection):
    """Drives the worker's EnvServer directly (same semantics, no isolation)."""

    def __init__(self, label: str) -> None:
        from ldm.envs.worker.server import EnvServer

        self.label = label
        self.server = EnvServer()
        self._pending: collections.deque = collections.deque()

    def send(self, message: dict[str, Any]) -> None:
        # round-trip through the protocol so arrays are copies, as across a process boundary
        msg = protocol.read_message(_BytesReader(protocol.dumps(message)))
        self._pending.append((msg["cmd"], self.server.handle(msg)))

    def recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        cmd, reply = self._pending.popleft()
        return self._unwrap(reply, cmd)

    def close(self) -> None:
        self.server.close()


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk
