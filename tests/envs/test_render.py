"""Frames through the wire protocol: the worker's `render` command, legacy render modes."""

import numpy as np
import pytest

import ldm.envs
from ldm.envs.worker.server import EnvServer
from ldm.errors import EnvError


def test_render_through_a_process_worker():
    env = ldm.envs.make("classic-control/CartPole-v1", render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.shape == (400, 600, 3)
        assert frame.min() < frame.max()  # a picture, not a blank
    finally:
        env.close()
    plain = ldm.envs.make("classic-control/CartPole-v1")
    try:
        with pytest.raises(EnvError, match="render_mode='rgb_array'"):
            plain.render()
    finally:
        plain.close()


def test_vector_frames_are_thinned_in_the_worker():
    venv = ldm.envs.make_vec("classic-control/CartPole-v1", 3, workers=2, render_mode="rgb_array")
    try:
        venv.reset(seed=[0, 1, 2])
        frames = venv.render_frames([0, 2], max_side=160)
        # 600 x 400 with stride ceil(600 / 160) = 4
        assert [f.shape for f in frames] == [(100, 150, 3)] * 2
        venv.step(np.array([0, 0, 0]))
        assert venv.render_frames([1], max_side=0)[0].shape == (400, 600, 3)
    finally:
        venv.close()


class _LegacyEnv:
    """A gym < 0.26 env: no render_mode at make, the mode passed to render()."""

    def __init__(self, size=4):
        import gymnasium as gym

        self.observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.size = size

    def render(self, mode="human"):
        if mode != "rgb_array":
            raise ValueError("no display")
        return np.full((self.size, self.size, 3), 7, np.uint8)


class _FakeGym:
    def make(self, env_id, **kwargs):
        return _LegacyEnv(**kwargs)  # TypeError on render_mode, as old gym's constructors


def test_legacy_render_mode_and_a_clear_note_when_there_is_no_frame():
    server = EnvServer()
    server.gym, server.api = _FakeGym(), "gymnasium"
    made = server.make("Legacy-v0", {"render_mode": "rgb_array", "size": 6}, count=1)
    (h,) = made["handles"]
    r = server.render([h])
    assert r["notes"] == [None] and r["frames"][0].shape == (6, 6, 3)
    made = server.make("Legacy-v0", {"size": 6}, count=1)  # no render mode asked for
    r = server.render(made["handles"])
    assert r["frames"] == [None] and "ValueError: no display" in r["notes"][0]


class _Wrapped:
    """A newer gym's wrapper (OrderEnforcing) around an old env class: its render() takes no
    mode (the suite's gym-copter, sepsisim and cymnasium raised TypeError here)."""

    def __init__(self, env):
        self.env, self.unwrapped = env, env
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def render(self):
        return self.env.render()


class _OldGymWithRenderMode(_LegacyEnv):
    """procgen's gym env: takes render_mode at make, yet render() draws for "human" unless
    told the mode."""

    def __init__(self, render_mode=None, size=4):
        super().__init__(size)
        self.render_mode = render_mode

    def render(self, mode="human"):
        return None if mode == "human" else super().render(mode)


class _AttributeModeEnv(_LegacyEnv):
    """A gymnasium-style env whose constructor does not take render_mode: render() reads
    the attribute."""

    render_mode = None

    def render(self):
        return np.full((3, 5, 3), 9, np.uint8) if self.render_mode == "rgb_array" else None


class _Gym:
    def __init__(self, make):
        self.make = make


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda env_id, size=4: _Wrapped(_LegacyEnv(size)), (6, 6, 3)),
        (lambda env_id, **kw: _OldGymWithRenderMode(**kw), (6, 6, 3)),
        (lambda env_id, size=4: _Wrapped(_AttributeModeEnv(size)), (3, 5, 3)),
    ],
    ids=["wrapper-without-mode", "old-gym-mode-at-render", "render-mode-attribute"],
)
def test_frames_from_envs_that_take_the_mode_elsewhere(make, shape):
    server = EnvServer()
    server.gym, server.api = _Gym(make), "gymnasium"
    made = server.make("Env-v0", {"render_mode": "rgb_array", "size": 6}, count=1)
    r = server.render(made["handles"])
    assert r["notes"] == [None], r["notes"]
    assert r["frames"][0].shape == shape
