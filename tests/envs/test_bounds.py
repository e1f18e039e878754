"""ldm/envs/worker/bounds.py: `clip_obs` turns a fake env's failing bounds check into a pass
(through the hub, in-process), and clips only what lies outside."""

import textwrap

import gymnasium as gym
import numpy as np
import pytest
import tomli_w

from ldm.envs.library.catalog import CATALOG_PATH_ENV, load_catalog
from ldm.envs.library.check import check
from ldm.envs.worker.space_desc import describe_space
from ldm.envs.worker.wrappers import apply
from ldm.refgen.selection import problem_reason

ENVS = '''
import numpy as np
import gymnasium as gym

class PastItsLimit(gym.Env):
    """Declares [-1, 1] but starts at -5.25 in one dim (gym-electric-motor's references)."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([0.5, -5.25, 0.0], np.float32), {}

    def step(self, action):
        return np.array([0.5, 1.5, -0.25], np.float32), 0.0, False, False, {}

gym.register("PastItsLimit-v0", entry_point=PastItsLimit)
'''


@pytest.fixture
def bounds_lib(tmp_path, monkeypatch):
    """`write(wrappers)`: the fake library's spec in a user catalog."""
    (tmp_path / "bounds_envs.py").write_text(textwrap.dedent(ENVS))
    monkeypatch.setenv(CATALOG_PATH_ENV, str(tmp_path))

    def write(wrappers=()):
        spec = {
            "name": "boundslib",
            "domain": "test",
            "imports": ["bounds_envs"],
            "python_path": [str(tmp_path)],
            "envs": ["PastItsLimit-v0"],
            "wrappers": list(wrappers),
        }
        (tmp_path / "boundslib.toml").write_text(tomli_w.dumps(spec))
        load_catalog.cache_clear()

    yield write
    load_catalog.cache_clear()


def test_the_bounds_check_fails_without_clip_obs_and_passes_with_it(bounds_lib):
    bounds_lib()
    problems = check("boundslib/PastItsLimit-v0", backend="inprocess").problems
    assert problem_reason(tuple(problems)) == "check: observation outside its space"
    assert "-5.25" in problems[0]
    bounds_lib(["clip_obs"])
    assert check("boundslib/PastItsLimit-v0", backend="inprocess").problems == []


class Emitting:
    """A described env (as the worker sees it) emitting fixed observations."""

    def __init__(self, space, obs):
        self.observation_desc = describe_space(space)
        self.action_desc = describe_space(gym.spaces.Discrete(2))
        self.obs = obs

    def reset(self, seed=None, options=None):
        return self.obs, {}

    def step(self, action):
        return self.obs, 1.0, False, False, {"k": 1}


def test_clip_obs_clips_only_values_outside_per_dim_bounds_and_keeps_the_dtype():
    space = gym.spaces.Box(np.array([-1.0, 0.0, -2.0]), np.array([1.0, 5.0, 2.0]), dtype=np.float64)
    env = apply(Emitting(space, np.array([3.0, -1.0, 0.5])), ["clip_obs"])
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [1.0, 0.0, 0.5])
    assert obs.dtype == np.float64
    obs, reward, terminated, truncated, info = env.step(0)
    np.testing.assert_array_equal(obs, [1.0, 0.0, 0.5])
    assert (reward, terminated, truncated, info) == (1.0, False, False, {"k": 1})
    assert env.observation_desc is env.env.observation_desc  # the declared space is kept


def test_clip_obs_leaves_non_box_observations_unwrapped():
    env = Emitting(gym.spaces.Discrete(3), 1)
    assert apply(env, ["clip_obs"]) is env
