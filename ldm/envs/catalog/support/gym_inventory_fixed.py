"""Registers `InventoryFixed-v0`: gym-inventory's env with its observation space corrected.

The published `InventoryEnv(n)` starts at state n and its transition `min(x + a, n) - d`
reaches n again, so its observations take n + 1 values (0..n) while it declares
`Discrete(n)`: every episode starts outside its own observation space, and `ldm envs
check` rejects `Inventory-v0` for it (recorded in the spec's `failed`). The subclass below
declares `Discrete(n + 1)` and draws the demand from the env's own seeded generator (the
published env seeds `self.np_random` but draws from numpy's global one, so a seed does not
reproduce an episode); nothing else changes, and the source tree stays as published.

Runs inside the gym-inventory venv (Python 3.6, gym 0.9.7): keep it to that Python.

Must not import ldm (not installed in a library's venv): only gym, gym_inventory and the
standard library.
"""

from gym import spaces
from gym.envs.registration import register
from gym_inventory.envs import InventoryEnv


class InventoryFixedEnv(InventoryEnv):
    def __init__(self, n=100, **kwargs):
        InventoryEnv.__init__(self, n=n, **kwargs)
        self.observation_space = spaces.Discrete(n + 1)

    def demand(self):
        return self.np_random.poisson(self.lam)


register(
    id="InventoryFixed-v0",
    entry_point="gym_inventory_fixed:InventoryFixedEnv",
    timestep_limit=1000,
    nondeterministic=True,
)
