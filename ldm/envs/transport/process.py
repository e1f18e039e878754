"""ProcessConnection: the worker script (ldm/envs/worker/server.py) as a subprocess inside the
library's own venv, frames over its stdin/stdout, stderr kept as a tail; `LAUNCHERS` (the
sandbox wraps the worker's command here, by name). Plain framed request/response, plus the
one-byte signals of the shared-memory step path (`signal`, `recv_signal`: ldm/envs/transport/shm.py
says what they mean).

Every process connection is closed at interpreter exit if its owner forgot to
(ldm.envs.transport.lifetime); a worker's environment variables are an allowlist (ldm.envs.transport.workerenv)
and its scratch directory is removed on every exit path (ldm.envs.transport.scratch).

Imports connection, messages, catalog, lifetime, scratch, workerenv and the worker's protocol; a
launcher's module (the sandbox) only by name, when a worker starts. Must not import backends,
shm, Ray or Docker modules (they import this one), gymnasium, an environment library or torch.
"""

from __future__ import annotations

import collections
import importlib
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.transport import messages
from ldm.envs.transport.connection import DEFAULT_TIMEOUT, WORKER_SCRIPT, Connection, WorkerError
from ldm.envs.transport.lifetime import track
from ldm.envs.transport.scratch import Scratch
from ldm.envs.transport.workerenv import worker_environment
from ldm.envs.worker import protocol
from ldm.errors import EnvError

#: wrapped (the sandbox's bubblewrap and limits). Imported where the worker starts, so a Ray
#: actor's process finds it as the client's does; no module registers itself by being imported.
LAUNCHERS: dict[str, tuple[str, str]] = {"sandbox": ("ldm.envs.transport.sandbox", "launch")}


def launcher(name: str) -> Callable[[list[str], Path, LibrarySpec], list[str]]:
    """The function of launcher `name` (EnvError naming the known ones when unknown)."""
    if name not in LAUNCHERS:
        raise EnvError(f"unknown worker launcher {name!r}; known: {sorted(LAUNCHERS)}")
    module, function = LAUNCHERS[name]
    try:
        return getattr(importlib.import_module(module), function)
    except ImportError as e:
        raise EnvError(f"launcher {name!r} needs {module}, which does not import: {e}") from None


class ProcessConnection(Connection):
    """The worker script as a subprocess; frames over stdin/stdout, stderr kept as a tail."""

    def __init__(
        self,
        label: str,
        python: str | Path,
        spec: LibrarySpec,
        launch: str | None = None,
        argv: list[str] | None = None,
        client_env: bool = False,
        buffer: Any = None,
    ) -> None:
        """`argv` replaces the worker command (the docker client); `client_env=True` gives it
        the client's whole environment (the docker client's, not the container's), else the
        worker gets ldm.envs.transport.workerenv's cleared environment plus allowlist."""
        self.label = label
        # an ldm.envs.transport.shm_buffer.SharedBuffer the worker may map later (its fd is inherited);
        # a shared-memory step handle takes it over once the worker mapped it (ldm/envs/transport/shm.py)
        self.buffer = buffer
        wrap = launcher(launch) if launch is not None else None
        self._scratch = Scratch()
        self.scratch = self._scratch.path
        try:
            argv = argv or [str(python), "-u", str(WORKER_SCRIPT)]
            if wrap is not None:
                argv = wrap(argv, self.scratch, spec)
            child_env = (
                dict(os.environ)
                if client_env
                else worker_environment(spec, self.scratch, sandboxed=launch == "sandbox")
            )
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.scratch,
                env=child_env,
                pass_fds=buffer.pass_fds if buffer is not None else (),
            )
        except BaseException:
            self._scratch.remove()
            raise
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        # the command each reply owed answers, for its error messages
        self._cmds: collections.deque[str] = collections.deque()
        self._closed = False
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._reader = protocol.FrameReader(self.proc.stdout.fileno())
        self._stdin_fd = self.proc.stdin.fileno()
        self._writer: Any = self.proc.stdin  # where frames go (see `rebind`)
        self._rebound_fd: int | None = None
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        track(self)

    def _read_stderr(self) -> None:
        # os.read on the raw fd, not a buffered readline: a daemon thread blocked inside a
        # BufferedReader holds its lock, and the interpreter aborts at exit when it finds the
        # lock taken (`_enter_buffered_busy`). The thread owns the stream and closes it at EOF.
        assert self.proc.stderr is not None
        fd, partial = self.proc.stderr.fileno(), b""
        while chunk := os.read(fd, 1 << 14):
            *lines, partial = (partial + chunk).split(b"\n")
            self._tail.extend(ln.decode("utf-8", "replace").rstrip() for ln in lines)
        if partial:
            self._tail.append(partial.decode("utf-8", "replace").rstrip())
        self.proc.stderr.close()

    @property
    def tail(self) -> str:
        return "\n".join(self._tail)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message: dict[str, Any]) -> None:
        # no liveness poll here (a wait syscall per step): a worker that died is found by the
        # write (EPIPE) or, if something else holds its stdin, by the reply's EOF in `recv`
        cmd = message.get("cmd", "?")
        try:
            self._writer.write(protocol.dumps(message))
            self._writer.flush()
        except (OSError, ValueError):  # ValueError: the pipe was closed with the connection
            raise self.dead(cmd) from None
        self._cmds.append(cmd)

    def recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        cmd = self._cmds.popleft() if self._cmds else "?"
        try:
            reply = self._reader.read_message(timeout)
        except (EOFError, ValueError, OSError):
            raise self.dead(cmd) from None
        if reply is None:
            raise self.hung(cmd, timeout)
        return self._unwrap(reply, cmd)

    # -- signals: one byte between frames (the shared-memory step path, ldm/envs/transport/shm.py) ---
    @property
    def reader(self) -> protocol.FrameReader:
        """Where the worker's frames and signals are read from (a poller may fill it)."""
        return self._reader

    def signal(self, byte: bytes, cmd: str) -> None:
        """Send one signal byte, standing for `cmd` (named in errors), in one write."""
        if self._closed:  # its descriptor may be another file's by now
            raise self.dead(cmd)
        try:
            os.write(self._stdin_fd, byte)
        except (OSError, ValueError):
            raise self.dead(cmd) from None

    def recv_signal(self, cmd: str, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """The worker's answer to the signal for `cmd`: a signal byte (bytes), or the
        result of a framed reply (WorkerError when it reports a failure, dies or hangs)."""
        try:
            answer = self._reader.read_next(timeout)
        except (EOFError, ValueError, OSError):
            raise self.dead(cmd) from None
        if answer is None:
            raise self.hung(cmd, timeout)
        return answer if isinstance(answer, bytes) else self._unwrap(answer, cmd)

    def wait_fd(self) -> int | None:
        return None if self._reader.buf else self._reader.fd

    def rebind(self, write_fd: int, read_fd: int) -> None:
        """Talk over these descriptors from now on, not the worker's stdin/stdout (the Docker
        worker's wake-up FIFOs, ldm/envs/transport/shm.py); they are closed with the connection."""
        self._writer = os.fdopen(write_fd, "wb")
        self._stdin_fd = write_fd
        self._reader = protocol.FrameReader(read_fd)
        self._rebound_fd = read_fd

    def hung(self, cmd: str, timeout: float | None) -> WorkerError:
        """Kill the worker that did not answer `cmd` in time; the error to raise."""
        self.kill()
        return WorkerError(
            f"{self.label}: worker did not answer {cmd!r} within {timeout:.0f} s (hung); "
            "it was killed. Raise the timeout if the env is just slow.",
            self.tail,
        )

    def dead(self, cmd: str) -> WorkerError:
        """The error of a worker found dead during `cmd` (its exit code and stderr's tail)."""
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self._stderr_thread.join(timeout=0.5)  # let the stderr reader catch the last lines
        if self.proc.returncode is not None:
            self._scratch.remove()
        return WorkerError(
            f"{self.label}: worker process died (exit code {self.proc.returncode}) during {cmd!r}{self.hint}",
            self.tail,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._scratch.remove()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None:
            try:
                self.call(messages.close(), timeout=5)
            except EnvError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        # stderr belongs to its reader thread (closed at EOF; a grandchild that keeps the pipe
        # open keeps it open, and closing it under the thread's feet is what aborts at exit)
        self._stderr_thread.join(timeout=1)
        for stream in {self.proc.stdin, self.proc.stdout, self._writer}:
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if self._rebound_fd is not None:
            os.close(self._rebound_fd)
            self._rebound_fd = None
        if self.buffer is not None:  # never taken over by a step handle
            self.buffer.close()
        self._scratch.remove()
