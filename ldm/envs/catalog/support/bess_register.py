"""Registers building-energy-storage-simulation's env (the package registers none itself).

Runs inside that library's venv. The env is built from the package's bundled year of load,
solar and price profiles; the variants differ in episode length and randomised starts.
"""

import gymnasium as gym


def _make(max_timesteps=2000, randomize_start_time_step=False, **kwargs):
    from building_energy_storage_simulation import BuildingSimulation, Environment

    return Environment(
        BuildingSimulation(**kwargs),
        max_timesteps=max_timesteps,
        randomize_start_time_step=randomize_start_time_step,
    )


gym.register("BuildingEnergyStorage-v0", entry_point=_make, kwargs={"max_timesteps": 2000})
gym.register(
    "BuildingEnergyStorage-random-start-v0",
    entry_point=_make,
    kwargs={"max_timesteps": 500, "randomize_start_time_step": True},
)
