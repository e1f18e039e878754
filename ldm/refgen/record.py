"""Recording: every transition of SB3 training goes straight into a RunWriter.

`RecordingVecEnv` sits directly on the hub's VecEnv, below any normalisation wrapper, so the
store holds observations as the env produced them and the actions the env received (SB3
clips Box actions before `step`). Each sub-env is one stream of the run; memory is bounded by
the writer's chunking.

Owns: `RecordingVecEnv`. Imports numpy, stable_baselines3's VecEnvWrapper and
ldm.data.writer; must not import ldm.envs (it wraps whatever VecEnv it is given) or later
parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper

from ldm.data.writer import RunWriter


class RecordingVecEnv(VecEnvWrapper):
    def __init__(self, venv: Any, writer: RunWriter | None) -> None:
        super().__init__(venv)
        self.writer = writer
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self.episode_returns: list[float] = []
        self._running = np.zeros(venv.num_envs)

    def reset(self) -> Any:
        self._obs = self.venv.reset()
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        truncated = np.array([bool(i.get("TimeLimit.truncated", False)) for i in infos])
        terminated = dones & ~truncated
        if self.writer is not None:
            self.writer.append(self._obs, self._actions, rewards, terminated, truncated)
        self._running += rewards
        for k in np.flatnonzero(dones):
            self.episode_returns.append(float(self._running[k]))
            self._running[k] = 0.0
        self._obs = obs
        return obs, rewards, dones, infos
