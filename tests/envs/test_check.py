"""ldm/envs/library/check.py: the seeded-rollout checks, on plain in-process Gymnasium envs."""

import gymnasium as gym
import numpy as np

from ldm.envs.library.check import rollout_problems


class Drifting(gym.Env):
    """Long episodes; `reset` seeds its own generator from `seed` like sepsisim does, so with
    `entropy` an unseeded reset draws from the OS; `nan` breaks an observation at step 3."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, entropy=False, nan=False, fixed=False, escape=False):
        self.entropy, self.nan, self.fixed, self.escape = entropy, nan, fixed, escape
        self.rng, self.t = None, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if self.fixed:  # ignores the seed altogether: every episode the same
            self.rng = np.random.default_rng(0)
        elif self.entropy:
            self.rng = np.random.default_rng(seed)
        else:
            self.rng = self.np_random
        self.t = 0
        return self.rng.uniform(-1, 1, 2), {}

    def step(self, action):
        self.t += 1
        obs = self.rng.uniform(-1, 1, 2)
        if self.nan and self.t == 3:
            obs[0] = np.nan
        if self.escape and self.t == 5:
            obs[1] = 12.5  # outside the declared [-10, 10]
        return obs, 0.0, False, False, {}


def test_a_seeded_env_passes():
    assert rollout_problems(Drifting()) == []
    assert rollout_problems(Drifting(fixed=True)) == []


def test_an_unseeded_reset_drawing_fresh_entropy_is_named_with_its_fix():
    (problem,) = rollout_problems(Drifting(entropy=True))
    assert "unseeded reset" in problem and "derive_reset_seeds" in problem


def test_a_non_finite_observation_is_reported():
    escape, nan = rollout_problems(Drifting(nan=True))
    assert escape.startswith("observation 3 of a seeded episode") and "NaN" in escape
    assert nan == "an observation holds NaN or inf"


def test_an_observation_outside_the_declared_bounds_is_named_with_its_step():
    """As discovery's trial names it: `ldm envs check --record` must not lose that finding."""
    (problem,) = rollout_problems(Drifting(escape=True))
    assert problem.startswith("observation 5 of a seeded episode")
    assert "12.5" in problem and "[-10, 10]" in problem
