"""The `ray` backend: a Ray actor owns a process connection on whichever node hosts it, so a
cluster can host environments (the library's venv is built on that node).

Owns: `RayConnection` and the actor class (made on first use: ray is optional). Imports ray
lazily, ldm.envs.transport.connection/process, catalog, venvs and lifetime (not backends, which
imports this module in its connector); must not import an environment
library, torch, or any later part (data, refgen, model, ...).
"""

from __future__ import annotations

import collections
from typing import Any

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.transport.connection import DEFAULT_TIMEOUT, Connection, WorkerError
from ldm.envs.transport.lifetime import track
from ldm.envs.transport.process import ProcessConnection
from ldm.errors import EnvError


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
                from ldm.envs.library.catalog import load_spec
                from ldm.envs.library.venvs import ensure_venv

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
