"""Backends: how a client reaches an env worker. One interface, several transports.

- `inprocess`: the worker's `EnvServer` in this process (no isolation; for libraries installed
  in ldm's own environment, and for tests);
- `process` (default): the worker script as a subprocess inside the library's own venv,
  talking the wire protocol over its stdin/stdout;
- `ray`: a Ray actor that owns a `process` connection on whichever node hosts it, so a
  cluster can host environments (optional: needs `ray`);
- `docker`: registered by `ldm.envs.docker` (the worker in a container).

A connection offers `send(message)` then `recv(timeout)` (so that several workers can step in
parallel), `call(message, timeout)`, `close()` and `alive`. Errors carry the env id and the
tail of the worker's stderr. Every process and Ray connection is closed at interpreter exit if
its owner forgot to (ldm.envs.lifetime); a worker's environment variables are an allowlist
(ldm.envs.workerenv) and its scratch directory is removed on every exit path (ldm.envs.scratch).
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ldm.envs.catalog import LibrarySpec
from ldm.envs.lifetime import track
from ldm.envs.scratch import Scratch
from ldm.envs.worker import protocol
from ldm.envs.workerenv import worker_environment
from ldm.errors import EnvError

WORKER_SCRIPT = Path(__file__).parent / "worker" / "server.py"
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


class FramedCodec:
    """How a process connection turns messages into bytes and back: the framed protocol.
    `ldm.envs.shm` swaps in a codec whose steps go through a shared buffer."""

    def encode(self, message: dict[str, Any]) -> bytes:
        return protocol.dumps(message)

    def decode(self, reader: protocol.FrameReader, timeout: float | None) -> Any:
        """The next reply, or None on timeout (raises EOFError when the stream is closed)."""
        return reader.read_message(timeout)

    def result(self, cmd: str, result: Any) -> Any:
        """The result of a successful reply to `cmd`, as the caller sees it."""
        return result


#: name -> function(argv, scratch_dir, spec) -> argv; the sandbox and docker plug in here.
LAUNCHERS: dict[str, Callable[[list[str], Path, LibrarySpec], list[str]]] = {}


class ProcessConnection(Connection):
    """The worker script as a subprocess; frames over stdin/stdout, stderr kept as a tail."""

    def __init__(
        self,
        label: str,
        python: str | Path,
        spec: LibrarySpec,
        launcher: str | None = None,
        argv: list[str] | None = None,
        client_env: bool = False,
        buffer: Any = None,
    ) -> None:
        """`argv` replaces the worker command (the docker client); `client_env=True` gives it
        the client's whole environment (the docker client's, not the container's), else the
        worker gets ldm.envs.workerenv's cleared environment plus allowlist."""
        self.label = label
        # an ldm.envs.shm.SharedBuffer the worker may map later (its fd is inherited)
        self.buffer = buffer
        self.codec = FramedCodec()
        if launcher is not None and launcher not in LAUNCHERS:
            raise EnvError(f"unknown worker launcher {launcher!r}; known: {sorted(LAUNCHERS)}")
        self._scratch = Scratch()
        self.scratch = self._scratch.path
        try:
            argv = argv or [str(python), "-u", str(WORKER_SCRIPT)]
            if launcher is not None:
                argv = LAUNCHERS[launcher](argv, self.scratch, spec)
            child_env = (
                dict(os.environ)
                if client_env
                else worker_environment(spec, self.scratch, sandboxed=launcher == "sandbox")
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
        self._cmds: collections.deque[str] = collections.deque()
        self._closed = False
        assert self.proc.stdout is not None
        self._reader = protocol.FrameReader(self.proc.stdout.fileno())
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
        cmd = message.get("cmd", "?")
        if not self.alive:
            raise self._dead(cmd)
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(self.codec.encode(message))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._dead(cmd) from None
        self._cmds.append(cmd)

    def recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        cmd = self._cmds.popleft() if self._cmds else "?"
        try:
            reply = self.codec.decode(self._reader, timeout)
        except (EOFError, ValueError, OSError):
            raise self._dead(cmd) from None
        if reply is None:
            self.kill()
            raise WorkerError(
                f"{self.label}: worker did not answer {cmd!r} within {timeout:.0f} s (hung); "
                "it was killed. Raise the timeout if the env is just slow.",
                self.tail,
            )
        return self.codec.result(cmd, self._unwrap(reply, cmd))

    def wait_fd(self) -> int | None:
        return None if self._reader.buf else self._reader.fd

    def _dead(self, cmd: str) -> WorkerError:
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
                self.call({"cmd": "close"}, timeout=5)
            except EnvError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        # stderr belongs to its reader thread (closed at EOF; a grandchild that keeps the pipe
        # open keeps it open, and closing it under the thread's feet is what aborts at exit)
        self._stderr_thread.join(timeout=1)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.codec = FramedCodec()  # drops the views on the buffer before it is unmapped
        if self.buffer is not None:
            self.buffer.close()
        self._scratch.remove()


class RayConnection(Connection):
    """A Ray actor owning a ProcessConnection on its node (the library venv is built there)."""

    def __init__(self, label: str, spec: LibrarySpec, launcher: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise EnvError("backend 'ray' needs ray: pip install 'ldm[ray]'") from None
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        self.label = label
        self._ray = ray
        self.actor = _ray_actor_class().remote(label, spec.path, launcher)
        self._futures: collections.deque = collections.deque()
        track(self)

    def send(self, message: dict[str, Any]) -> None:
        self._futures.append((message.get("cmd", "?"), self.actor.call.remote(message)))

    def recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        cmd, fut = self._futures.popleft()
        try:
            ok, value, tail = self._ray.get(fut, timeout=timeout)
        except self._ray.exceptions.GetTimeoutError:
            raise WorkerError(
                f"{self.label}: ray worker did not answer {cmd!r} in {timeout} s"
            ) from None
        if not ok:
            raise WorkerError(f"{self.label}: {value}", tail)
        return value

    def close(self) -> None:
        if self.actor is None:
            return
        actor, self.actor = self.actor, None
        try:
            self._ray.get(actor.close.remote(), timeout=10)
            self._ray.kill(actor)
        except Exception:  # noqa: BLE001 (the actor or Ray itself may be gone already)
            pass


_RAY_ACTOR = None


def _ray_actor_class():
    global _RAY_ACTOR
    if _RAY_ACTOR is None:
        import ray

        @ray.remote(num_cpus=0)
        class EnvWorkerActor:
            def __init__(self, label: str, spec_path: str, launcher: str | None) -> None:
                from ldm.envs.catalog import load_spec
                from ldm.envs.venvs import ensure_venv

                spec = load_spec(spec_path)
                self.conn = ProcessConnection(label, ensure_venv(spec), spec, launcher)

            def call(self, message):
                try:
                    return True, self.conn.call(message), ""
                except WorkerError as e:
                    return False, str(e).split("\n---")[0], e.tail

            def close(self):
                self.conn.close()

        _RAY_ACTOR = EnvWorkerActor
    return _RAY_ACTOR


BACKENDS = ("inprocess", "process", "ray", "docker")


def connect(
    backend: str,
    spec: LibrarySpec,
    label: str,
    sandbox: bool = False,
    init_timeout: float = DEFAULT_TIMEOUT,
) -> Connection:
    """Open a connection to a fresh worker for `spec` and initialise it (its imports may take
    `init_timeout` seconds)."""
    sandbox = sandbox or spec.sandbox
    if backend == "inprocess":
        if sandbox:
            raise EnvError("sandbox=True needs an isolated backend ('process'), not 'inprocess'")
        conn: Connection = InProcessConnection(label)
    elif backend == "process":
        from ldm.envs.venvs import ensure_venv

        launcher = None
        if sandbox:
            _load_sandbox()
            launcher = "sandbox"
        from ldm.envs.shm import SharedBuffer

        buffer = SharedBuffer.anonymous()
        try:
            conn = ProcessConnection(label, ensure_venv(spec), spec, launcher, buffer=buffer)
        except BaseException:
            buffer.close()
            raise
        if sandbox:
            from ldm.envs.sandbox import limits

            conn.hint = f" ({limits().describe()})"
    elif backend == "ray":
        conn = RayConnection(label, spec, "sandbox" if sandbox else None)
    elif backend == "docker":
        try:
            from ldm.envs import docker
        except ImportError:
            raise EnvError("backend 'docker' is not available in this version of ldm") from None
        conn = docker.connect(spec, label)
    else:
        raise EnvError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    try:
        conn.call(init_message(spec, conn.paths), init_timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def init_message(spec: LibrarySpec, paths: list[str] | None = None) -> dict:
    """The worker's `init` command for a library spec (`paths`: python_path as the worker sees it)."""
    return {
        "cmd": "init",
        "api": spec.api,
        "imports": spec.imports,
        "wrappers": spec.wrappers,
        "paths": paths
        if paths is not None
        else [str(Path(spec.path).parent / p) for p in spec.python_path],
    }


def _load_sandbox() -> None:
    try:
        import ldm.envs.sandbox  # noqa: F401  (registers LAUNCHERS["sandbox"])
    except ImportError:
        raise EnvError("sandbox=True needs ldm.envs.sandbox, which this version lacks") from None
    if "sandbox" not in LAUNCHERS:
        raise EnvError("ldm.envs.sandbox did not register a 'sandbox' launcher")
