"""A Stable-Baselines3 `VecEnv` over the hub's vector proxy (SB3 is imported only here).

Each finished episode's info carries SB3's `episode` record ({"r": return, "l": length, "t":
seconds since the env was made}), as SB3's `Monitor`/`VecMonitor` write it: `ep_rew_mean`
appears in SB3's logs, and `evaluate_policy` reads whole episodes (the env answers that it
is Monitor-wrapped, so it does not warn). A `VecMonitor` around it replaces the records
with its own, equal ones.

Owns: `HubVecEnv` (`ldm.envs.sb3_vec_env` makes one). Imports numpy, stable_baselines3 and
ldm.envs.vector; must not be imported by `ldm.envs` at package import (SB3 pulls in torch),
nor import any later part (data, refgen, model, ...).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from ldm.envs.vector import ProxyVectorEnv


class HubVecEnv(VecEnv):
    """SB3 semantics on top of `ProxyVectorEnv`: same-step reset, `terminal_observation` and
    `TimeLimit.truncated` in each env's info dict. `step_async` sends the actions at once, so
    the workers step while the caller does other work before `step_wait` (RecordingVecEnv
    records the previous transition then)."""

    def __init__(self, venv: ProxyVectorEnv) -> None:
        self.venv = venv
        self.env_id = venv.env_id
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._t_start = time.time()
        self._returns = np.zeros(self.num_envs, np.float64)  # of each env's current episode
        self._steps = 0  # steps since reset; an episode's length is steps - its start
        self._starts = np.zeros(self.num_envs, np.int64)

    def reset(self):
        seeds = [s if s is None else int(s) for s in self._seeds]
        if all(s is None for s in seeds):
            seeds = None  # type: ignore[assignment]
        obs, _ = self.venv.reset(seed=seeds, options=self._options[0] if self._options else None)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._steps = 0
        self._starts[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_send(actions)

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.venv.step_recv()
        dones = terminated | truncated
        self._returns += rewards  # the one cost of the episode records on most steps
        self._steps += 1
        out_infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if infos:  # most steps of most envs carry no info and end no episode (an end has final_obs)
            self._sb3_infos(infos, dones, terminated, truncated, out_infos)
            self._episodes(dones, out_infos)
        return obs, rewards.astype(np.float32), dones, out_infos

    def _episodes(self, dones: np.ndarray, out: list[dict]) -> None:
        """SB3's `episode` record in the info of each env whose episode ended (Monitor's)."""
        t = round(time.time() - self._t_start, 6)
        for i in np.flatnonzero(dones):
            length = self._steps - int(self._starts[i])
            out[i]["episode"] = {"r": float(self._returns[i]), "l": length, "t": t}
        self._returns[dones] = 0.0
        self._starts[dones] = self._steps

    def _sb3_infos(self, infos: dict, dones, terminated, truncated, out: list[dict]) -> None:
        """Gymnasium's vector infos -> SB3's per-env dicts, with its end-of-episode keys."""
        for key, values in infos.items():
            if key.startswith("_") or key in ("final_obs", "final_info"):
                continue
            mask = infos.get("_" + key)
            for i in range(self.num_envs):
                if mask is None or mask[i]:
                    out[i][key] = values[i]
        for i in np.flatnonzero(dones):
            out[i]["terminal_observation"] = infos["final_obs"][i]
            out[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        if attr_name == "render_mode":
            return [None for _ in self._get_indices(indices)]
        raise AttributeError(
            f"{self.env_id}: attribute {attr_name!r} is not reachable through the hub"
        )

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"{self.env_id}: cannot set {attr_name!r} on isolated envs")

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        raise AttributeError(f"{self.env_id}: cannot call {method_name!r} on isolated envs")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        """Only `Monitor`: the episode records are written here as it writes them."""
        return [wrapper_class is Monitor for _ in self._get_indices(indices)]
