"""The deterministic check (ldm/refgen/check.py): each of its envs' first episode, seeded as
documented, whatever the episodes' lengths."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ldm.refgen.check import CHECK_SEED_OFFSET, play_deterministic


class AngleController:
    """Pushes the cart toward the pole's lean: balances CartPole for a seed-dependent time."""

    def predict(self, obs, deterministic=True):
        assert deterministic
        obs = np.asarray(obs)
        return (obs[:, 2] > 0).astype(np.int64), None


def _alone(seed: int) -> float:
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = AngleController().predict(obs[None])[0][0]
        obs, r, term, trunc, _ = env.step(int(action))
        total, done = total + float(r), term or trunc
    return total


def test_each_env_plays_one_episode_from_its_own_seed():
    returns = play_deterministic(AngleController(), "classic-control/CartPole-v1", 6, 3, 500)
    expected = [_alone(3 + CHECK_SEED_OFFSET + i) for i in range(6)]
    assert returns == expected
    assert (
        len(set(expected)) > 1
    )  # the lengths differ: a short episode did not stand in for a long one
