"""Registers building-energy-storage-simulation's env (the package registers none itself).

Runs inside that library's venv. The env is built from the package's bundled year of load,
solar and price profiles; the variants differ in episode length and randomised starts.

Must not import ldm (not installed in a library's venv): only the package itself, gymnasium,
numpy and the standard library.
"""

import gymnasium as gym
import numpy as np


class _SeedGlobalNumpy(gym.Wrapper):
    """The library draws random starts from numpy's global generator: seed it on reset(seed)."""

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            np.random.seed(seed)
        return self.env.reset(seed=seed, options=options)


def _make(max_timesteps=2000, randomize_start_time_step=False, **kwargs):
    from building_energy_storage_simulation import BuildingSimulation, Environment

    env = Environment(
        BuildingSimulation(**kwargs),
        max_timesteps=max_timesteps,
        randomize_start_time_step=randomize_start_time_step,
    )
    # the env declares a float32 Box but returns float64 observations: cast them
    env = gym.wrappers.TransformObservation(
        env, lambda o: np.asarray(o, dtype=np.float32), env.observation_space
    )
    return _SeedGlobalNumpy(env) if randomize_start_time_step else env


gym.register("BuildingEnergyStorage-v0", entry_point=_make, kwargs={"max_timesteps": 2000})
gym.register(
    "BuildingEnergyStorage-random-start-v0",
    entry_point=_make,
    kwargs={"max_timesteps": 500, "randomize_start_time_step": True},
)
