"""Backends: how a client reaches an env worker. One interface, several transports.

- `inprocess`: the worker's `EnvServer` in this process (no isolation; for libraries installed
  in ldm's own environment, and for tests);
- `process` (default): the worker script (ldm/envs/worker/server.py) as a subprocess inside
  the library's own venv, talking the wire protocol over its stdin/stdout;
- `ray`: a Ray actor that owns a `process` connection on whichever node hosts it
  (ldm/envs/transport/ray_backend.py; optional: needs `ray`);
- `docker`: the worker in a container (ldm/envs/transport/docker.py).

The connection interface (`Connection`, `WorkerError`, the in-process kind) is
ldm/envs/transport/connection.py, the process kind ldm/envs/transport/process.py (the sandbox plugs into its
`LAUNCHERS`, by name).

Owns: `CONNECTORS` (backend name -> connector) and `launch`/`connect` (which send the `init`
message, ldm/envs/transport/messages.py).
Imports connection, process and catalog; the venvs, shm, sandbox, Ray and Docker modules only
inside their connector. Must not import gymnasium, an environment library, torch, or any
later part (data, refgen, model, ...). Nothing of the transport imports this module.
"""

from __future__ import annotations

from collections.abc import Callable

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.transport.connection import DEFAULT_TIMEOUT, Connection, InProcessConnection
from ldm.envs.transport.messages import init as init_message
from ldm.envs.transport.process import ProcessConnection
from ldm.errors import EnvError


def _connect_inprocess(spec: LibrarySpec, label: str, sandbox: bool) -> Connection:
    if sandbox:
        raise EnvError("sandbox=True needs an isolated backend ('process'), not 'inprocess'")
    return InProcessConnection(label)


def _connect_process(spec: LibrarySpec, label: str, sandbox: bool) -> Connection:
    from ldm.envs.library.venvs import ensure_venv
    from ldm.envs.transport.shm_buffer import SharedBuffer

    launch = "sandbox" if sandbox else None
    buffer = SharedBuffer.anonymous()
    try:
        conn = ProcessConnection(label, ensure_venv(spec), spec, launch, buffer=buffer)
    except BaseException:
        buffer.close()
        raise
    if sandbox:
        from ldm.envs.transport.sandbox import limits

        conn.hint = f" ({limits().describe()})"
    return conn


def _connect_ray(spec: LibrarySpec, label: str, sandbox: bool) -> Connection:
    from ldm.envs.transport.ray_backend import RayConnection

    return RayConnection(label, spec, "sandbox" if sandbox else None)


def _connect_docker(spec: LibrarySpec, label: str, sandbox: bool) -> Connection:
    try:
        from ldm.envs.transport import docker
    except ImportError:
        raise EnvError("backend 'docker' is not available in this version of ldm") from None
    return docker.connect(spec, label)


#: backend name -> function(spec, label, sandbox) -> an uninitialised connection
CONNECTORS: dict[str, Callable[[LibrarySpec, str, bool], Connection]] = {
    "inprocess": _connect_inprocess,
    "process": _connect_process,
    "ray": _connect_ray,
    "docker": _connect_docker,
}
BACKENDS = tuple(CONNECTORS)


def launch(backend: str, spec: LibrarySpec, label: str, sandbox: bool = False) -> Connection:
    """A connection to a fresh worker for `spec` with its `init` sent, not yet answered (take
    the reply with `recv`): workers launched one after the other import at the same time."""
    if backend not in CONNECTORS:
        raise EnvError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    conn = CONNECTORS[backend](spec, label, sandbox or spec.sandbox)
    try:
        conn.send(init_message(spec, conn.paths))
    except BaseException:
        conn.close()
        raise
    return conn


def connect(
    backend: str,
    spec: LibrarySpec,
    label: str,
    sandbox: bool = False,
    init_timeout: float = DEFAULT_TIMEOUT,
) -> Connection:
    """Open a connection to a fresh worker for `spec` and initialise it (its imports may take
    `init_timeout` seconds)."""
    conn = launch(backend, spec, label, sandbox)
    try:
        conn.recv(init_timeout)
    except BaseException:
        conn.close()
        raise
    return conn
