"""The step path, client side: one worker's envs stepped as a batch, whatever carries them.

A step handle (`Steps`) sends a worker its slice of the actions (`step_send`) and takes the
results back as a typed record (`step_recv` -> `StepResult`), as Gymnasium's AsyncVectorEnv
and PufferLib's vector layer do; `reset_send`/`reset_recv` likewise (`ResetResult`). Two
implementations: `FramedSteps` here (each step a framed request/response on the worker's
connection: every backend) and `SharedSteps` in shm.py (the arrays in a buffer shared with
the worker, one signal byte each way); `ProxyWorker.ready` (proxy.py) picks one once the
worker's envs are made. The vector env (vector.py) and the single env (proxy.py) both step
through a handle; control messages (render, close) stay plain calls on the connection.

Imports numpy, ldm.envs.transport.connection and messages; must not import shm (it imports this
module), the proxies, gymnasium, an environment library or torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ldm.envs.transport import messages
from ldm.envs.transport.connection import DEFAULT_TIMEOUT, Connection


class Final(NamedTuple):
    """The last observation and info of an episode that ended in a step (autoreset)."""

    obs: Any
    info: dict[str, Any]


class StepResult(NamedTuple):
    """One worker's slice of a batch step (n envs)."""

    obs: Any  # (n, *obs_shape) array, or a list of per-env observations (Dict, Tuple spaces)
    rewards: np.ndarray  # (n,) float64
    terminated: np.ndarray  # (n,) bool
    truncated: np.ndarray  # (n,) bool
    infos: list[dict[str, Any]] | None  # per env; None when no env has an info
    finals: list[Final | None] | None  # per env; None when no episode ended (or no autoreset)


class ResetResult(NamedTuple):
    """One worker's slice of a batch reset (n envs)."""

    obs: Any  # as StepResult.obs
    infos: list[dict[str, Any]]  # per env


class Steps:
    """A step handle on one worker's envs; a reset goes framed on every path."""

    def __init__(self, conn: Connection, handles: list[int], autoreset: bool) -> None:
        """`autoreset`: an env whose episode ends is reset in the same step (its final
        observation and info in `StepResult.finals`), as a vector env does."""
        self.conn, self.handles, self.autoreset = conn, handles, autoreset

    def step_send(self, actions: Any) -> None:
        """Send one action per env (an array or list of `len(handles)`)."""
        raise NotImplementedError

    def step_recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> StepResult:
        """The results of the step sent (WorkerError when the worker failed, died or hung)."""
        raise NotImplementedError

    def reset_send(self, seeds: list[int | None], options: dict | None = None) -> None:
        """Send a reset of every env, one seed each."""
        self.conn.send(messages.reset(self.handles, seeds, options))

    def reset_recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> ResetResult:
        """The results of the reset sent."""
        raise NotImplementedError

    def wait_fd(self) -> int | None:
        """A descriptor readable when the results arrive, or None when they can be taken
        without waiting on one (see `Connection.wait_fd`)."""
        return self.conn.wait_fd()

    def close(self) -> None:
        """Let go of what the handle holds (the connection is its worker's to close)."""


class FramedSteps(Steps):
    """Each step a framed request/response on the connection (any backend)."""

    def step_send(self, actions: Any) -> None:
        self.conn.send(messages.step(self.handles, actions, self.autoreset))

    def step_recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> StepResult:
        r = self.conn.recv(timeout)
        finals = r["finals"]
        if finals is not None:
            finals = [None if f is None else Final(f["obs"], f["info"]) for f in finals]
        return StepResult(
            r["obs"], r["rewards"], r["terminated"], r["truncated"], r["infos"], finals
        )

    def reset_recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> ResetResult:
        r = self.conn.recv(timeout)
        return ResetResult(r["obs"], r["infos"])
