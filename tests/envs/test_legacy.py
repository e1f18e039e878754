"""ldm/envs/worker/legacy.py: each gym generation's API becomes the 5-tuple API.

The fake envs below copy the shape of each generation's API (their base class claims to be
`gym.core`, which is how the converter tells gym's own methods from a library's). The real
gym 0.9.7 / 0.19 / 0.21 / 0.26 run in tests/envs/test_worker_compat.py and test_libraries.py.
"""

import warnings

import pytest

from ldm.envs.worker.legacy import LegacyGymEnv, upgrade_underscore_methods


class Discrete:
    def __init__(self, n):
        self.n = n


class CoreEnv:
    """gym >= 0.10's Env: step()/reset() are abstract and no longer call _step()/_reset()."""

    observation_space = Discrete(3)

    def step(self, action):
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError

    def seed(self, seed=None):
        return []

    def close(self):
        pass

    @property
    def unwrapped(self):
        return self


CoreEnv.__module__ = "gym.core"


class TimeLimit:
    """gym's TimeLimit before 0.15: counts steps, says nothing in the info."""

    def __init__(self, env, max_steps):
        self.env, self._max_episode_steps, self._elapsed_steps = env, max_steps, 0
        self.observation_space = env.observation_space

    @property
    def unwrapped(self):
        return self.env.unwrapped

    def seed(self, seed=None):
        return self.env.seed(seed)

    def reset(self, **kwargs):
        self._elapsed_steps = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, done, info = self.env.step(action)
        self._elapsed_steps += 1
        return obs, reward, done or self._elapsed_steps >= self._max_episode_steps, info

    def close(self):
        self.env.close()


class PreTenEnv(CoreEnv):
    """gym-inventory's shape: only underscore methods, `done` as an int, seed via _seed."""

    def _seed(self, seed=None):
        self.seeded = seed
        return [seed]

    def _reset(self):
        self.t = 0
        return 7

    def _step(self, action):
        self.t += 1
        return self.t, -1.0, int(action == 9), {}


def test_pre_010_underscore_methods_are_called_and_done_is_split_by_elapsed_steps():
    env = LegacyGymEnv(TimeLimit(PreTenEnv(), max_steps=3))
    obs, info = env.reset(seed=42)
    assert (obs, info) == (7, {}) and env.env.unwrapped.seeded == 42
    assert env.step(0) == (1, -1.0, False, False, {})
    assert env.step(0) == (2, -1.0, False, False, {})
    assert env.step(0) == (3, -1.0, False, True, {})  # the time limit: truncated
    env.reset()
    obs, reward, terminated, truncated, _ = env.step(9)  # the env's own end: terminated
    assert (terminated, truncated) == (True, False) and type(terminated) is bool


def test_upgrade_leaves_gym_own_underscore_defaults_alone():
    class Modern(CoreEnv):
        def step(self, action):
            return 0, 0.0, False, {}

        def _step(self, action):  # a helper of the library, shadowed by its own step()
            raise AssertionError("must not be called")

    env = upgrade_underscore_methods(Modern())
    assert env.step(0) == (0, 0.0, False, {})


class Gym021Env(CoreEnv):
    """gym 0.21: reset() -> obs, seed(n), TimeLimit.truncated in the info."""

    def seed(self, seed=None):
        self.seeded = seed
        return [seed]

    def reset(self):
        return "obs"

    def step(self, action):
        return "next", 1.0, True, {"TimeLimit.truncated": action == 1}


def test_reset_without_seed_calls_seed_and_timelimit_truncated_info_decides():
    env = LegacyGymEnv(Gym021Env())
    assert env.reset(seed=5) == ("obs", {}) and env.env.seeded == 5
    assert env.step(1)[2:4] == (False, True)
    assert env.step(0)[2:4] == (True, False)


class Gym026Env(CoreEnv):
    """gym 0.26: reset(seed, options) -> (obs, info), 5-tuple step."""

    def reset(self, seed=None, options=None):
        self.got = (seed, options)
        return "obs", {"k": 1}

    def step(self, action):
        return "next", 1.0, 0, 1, {}


def test_gym_026_passes_through_with_seed_and_options():
    env = LegacyGymEnv(Gym026Env())
    assert env.reset(seed=3, options={"a": 1}) == ("obs", {"k": 1})
    assert env.env.got == (3, {"a": 1})
    assert env.step(0) == ("next", 1.0, False, True, {})


def test_env_seeded_only_at_construction_warns_once_and_still_resets():
    class Procgen(CoreEnv):  # gym3's ToGymEnv: seed() takes no argument
        def seed(self):
            raise AssertionError("must not be called with a seed")

        def reset(self):
            return "frame"

    env = LegacyGymEnv(Procgen())
    with pytest.warns(UserWarning, match="seed ignored"):
        assert env.reset(seed=1) == ("frame", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert env.reset(seed=2) == ("frame", {})  # warned once only


def test_reset_with_only_kwargs_is_seeded_through_seed_when_the_env_has_it():
    class AtariEra(Gym021Env):  # gym-masked-atari: reset(**kwargs) ignores a seed
        def reset(self, **kwargs):
            self.kwargs = kwargs
            return "obs"

    env = LegacyGymEnv(AtariEra())
    assert env.reset(seed=9) == ("obs", {})
    assert env.env.seeded == 9 and env.env.kwargs == {}
