"""Recording: every transition of SB3 training goes straight into a RunWriter.

`RecordingVecEnv` sits directly on the hub's VecEnv, below any normalisation wrapper, so the
store holds observations as the env produced them and the actions the env received (SB3
clips Box actions before `step`). Each sub-env is one stream of the run; memory is bounded by
the writer's chunking.

A step's transition goes to the writer at the next `step_async`, once its actions are sent:
an asynchronous VecEnv (the hub's `HubVecEnv`, whose workers step in other processes) steps
while the transition is checked and buffered, so recording costs the hub no time (~12 us per
step of 8 CartPoles, and the writer's flush every 4,096 steps). The last transition is
recorded by `finish()` (also called by `reset` and `close`): call it before reading or
committing the writer.

It also keeps where the learner's wall time went: `env_seconds` (waiting on the envs: reset,
sending actions, waiting for their step) and `record_seconds` (checking and buffering
transitions, the writer's flushes); the rest of training is the algorithm's own (acting and
gradient steps). Four clock reads a step.

With `step_limit` (the hub's default limit for envs without one of their own), it counts the
episodes that limit cut (`cut_episodes`: truncated at exactly that many steps), so the run can
say it played under it.

Owns: `RecordingVecEnv`. Imports numpy, stable_baselines3's VecEnvWrapper and
ldm.data.writer; must not import ldm.envs (it wraps whatever VecEnv it is given) or later
parts.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper

from ldm.data.writer import RunWriter


class RecordingVecEnv(VecEnvWrapper):
    def __init__(self, venv: Any, writer: RunWriter | None, step_limit: int | None = None) -> None:
        super().__init__(venv)
        self.writer = writer
        self.step_limit = step_limit
        self.cut_episodes = 0
        """Episodes truncated at exactly `step_limit` steps (0 without one)."""
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        # the last step's (obs, actions, rewards, terminated, truncated), not yet written
        self._pending: tuple | None = None
        self.episode_returns: list[float] = []
        self._running = np.zeros(venv.num_envs)
        self.env_seconds = 0.0
        """Wall seconds spent in the wrapped VecEnv (reset, step_async, step_wait)."""
        self.record_seconds = 0.0
        """Wall seconds spent writing transitions."""

    def reset(self) -> Any:
        self.finish()
        t0 = perf_counter()
        self._obs = self.venv.reset()
        self.env_seconds += perf_counter() - t0
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.array(actions)  # a copy: it is written after the caller moved on
        t0 = perf_counter()
        self.venv.step_async(actions)
        self.env_seconds += perf_counter() - t0
        self.finish()  # the previous transition, while the envs step

    def finish(self) -> None:
        """Write the transition still held back (see the module docstring)."""
        pending, self._pending = self._pending, None
        if pending is not None and self.writer is not None and not self.writer.closed:
            t0 = perf_counter()
            self.writer.append(*pending)
            self.record_seconds += perf_counter() - t0

    def close(self) -> None:
        try:
            self.finish()
        finally:
            super().close()

    def step_wait(self) -> Any:
        t0 = perf_counter()
        obs, rewards, dones, infos = self.venv.step_wait()
        self.env_seconds += perf_counter() - t0
        truncated = np.array([bool(i.get("TimeLimit.truncated", False)) for i in infos])
        terminated = dones & ~truncated
        if self.writer is not None:
            # a copy of the rewards: SB3 adds the bootstrapped value of a truncated episode's
            # last state to the array it got, in place, before the transition is written
            self._pending = (self._obs, self._actions, rewards.copy(), terminated, truncated)
        self._running += rewards
        for k in np.flatnonzero(dones):
            self.episode_returns.append(float(self._running[k]))
            self._running[k] = 0.0
            length = infos[k].get("episode", {}).get("l")
            self.cut_episodes += bool(
                truncated[k] and self.step_limit and length == self.step_limit
            )
        self._obs = obs
        return obs, rewards, dones, infos
