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
