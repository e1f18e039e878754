"""ldm/envs/worker/wrappers.py and the wrapper modules it registers: the declared wrappers, on
plain described envs (no worker)."""

import gymnasium as gym
import numpy as np
import pytest

from ldm.envs.worker.episode_wrappers import StepLimit
from ldm.envs.worker.obs_wrappers import IMAGE_HW
from ldm.envs.worker.space_desc import describe_space
from ldm.envs.worker.wrappers import apply


class Described:
    """An env as the worker sees it: wire descriptions of its spaces, scripted steps."""

    def __init__(self, obs_space, obs, act_space=None, reward=1.0, end_after=None):
        self.observation_desc = describe_space(obs_space)
        self.action_desc = describe_space(act_space or gym.spaces.Discrete(2))
        self.obs, self.reward, self.end_after = obs, reward, end_after
        self.actions, self.steps, self.closed = [], 0, False

    def reset(self, seed=None, options=None):
        self.steps = 0
        return self.obs, {"seed": seed}

    def step(self, action):
        self.actions.append(action)
        self.steps += 1
        ended = self.end_after is not None and self.steps >= self.end_after
        return self.obs, self.reward, ended, False, {}

    def close(self):
        self.closed = True


def test_flatten_dict_concatenates_sorted_keys_with_one_hot_categories():
    space = gym.spaces.Dict(
        {
            "pos": gym.spaces.Box(-2.0, 2.0, (2,)),
            "cell": gym.spaces.Discrete(3, start=1),
            "counts": gym.spaces.MultiDiscrete([2, 4]),
        }
    )
    obs = {"pos": np.array([0.5, -1.5], np.float32), "cell": 3, "counts": np.array([1, 2])}
    env = apply(Described(space, obs), ["flatten_dict"])
    # sorted keys: cell (one-hot of 3 - start 1), counts, pos
    expected = np.array([0, 0, 1, 1, 2, 0.5, -1.5], np.float32)
    got, _ = env.reset(seed=3)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(env.step(0)[0], expected)
    desc = env.observation_desc
    assert (desc["type"], desc["shape"], desc["dtype"]) == ("Box", [7], "<f4")
    np.testing.assert_array_equal(desc["low"], [0, 0, 0, 0, 0, -2, -2])
    np.testing.assert_array_equal(desc["high"], [1, 1, 1, 1, 3, 2, 2])
    assert np.all((desc["low"] <= got) & (got <= desc["high"]))
    env.close()
    assert env.env.closed


def test_flatten_dict_fills_a_key_the_observation_lacks_with_zeros_inside_its_bounds():
    # a multi-agent env whose agents leave (mobile-env's mobile-small-ma-v0 crashed the wide
    # run's job with KeyError: 0 when user 0's session ended)
    space = gym.spaces.Dict({0: gym.spaces.Box(1.0, 2.0, (2,)), 1: gym.spaces.Box(-1.0, 1.0, (1,))})
    env = apply(Described(space, {1: np.array([0.5], np.float32)}), ["flatten_dict"])
    got, _ = env.reset()
    np.testing.assert_array_equal(got, [1.0, 1.0, 0.5])  # agent 0 gone: its low bound, 1.0
    desc = env.observation_desc
    assert np.all((desc["low"] <= got) & (got <= desc["high"]))


def test_flatten_dict_takes_tuples_and_refuses_what_it_cannot_flatten():
    space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.MultiBinary(3)))
    env = apply(Described(space, (1, np.array([1, 0, 1]))), ["flatten_dict"])
    np.testing.assert_array_equal(env.reset()[0], [0, 1, 1, 0, 1])
    text = gym.spaces.Dict({"mission": gym.spaces.Text(5), "x": gym.spaces.Box(0, 1, (1,))})
    with pytest.raises(TypeError, match="cannot flatten a Unsupported space"):
        apply(Described(text, {}), ["flatten_dict"])


def test_wrappers_apply_only_where_they_fit():
    box = Described(gym.spaces.Box(-1.0, 1.0, (3,)), np.zeros(3, np.float32))
    names = ["flatten_dict", "flatten_obs", "resize_image", "grid_as_image", "discrete_to_box"]
    assert apply(box, names) is box  # a flat vector needs none of them
    with pytest.raises(KeyError):
        apply(box, ["no_such_wrapper"])


def test_flatten_obs_and_discrete_to_box():
    grid = np.arange(6, dtype=np.float32).reshape(2, 3)
    env = apply(Described(gym.spaces.Box(0.0, 9.0, (2, 3)), grid), ["flatten_obs"])
    np.testing.assert_array_equal(env.reset()[0], np.arange(6))
    assert env.observation_desc["shape"] == [6]
    env = apply(Described(gym.spaces.Discrete(4), 2), ["discrete_to_box"])
    np.testing.assert_array_equal(env.reset()[0], [0, 0, 1, 0])


@pytest.mark.parametrize("shape, channels", [((210, 160, 3), 3), ((84, 84), 1)])
def test_resize_image_samples_nearest_pixels_to_64x64(shape, channels):
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    env = apply(Described(gym.spaces.Box(0, 255, shape, np.uint8), frame), ["resize_image"])
    out, _ = env.reset()
    assert out.shape == (*IMAGE_HW, channels) and out.dtype == np.uint8
    rows = np.arange(64) * shape[0] // 64
    cols = np.arange(64) * shape[1] // 64
    expected = frame[rows][:, cols]
    np.testing.assert_array_equal(out, expected.reshape(64, 64, channels))
    assert env.observation_desc["shape"] == [64, 64, channels]
    # a frame already 64x64 is left alone
    small = Described(
        gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    )
    assert apply(small, ["resize_image"]) is small


def test_image_first_channels_and_grid_as_image():
    stacked = np.random.default_rng(1).integers(0, 256, (64, 64, 6), dtype=np.uint8)
    space = gym.spaces.Box(0, 255, (64, 64, 6), np.uint8)
    env = apply(Described(space, stacked), ["image_first_channels"])
    np.testing.assert_array_equal(env.reset()[0], stacked[..., :3])
    assert env.observation_desc["shape"] == [64, 64, 3]
    grid = np.full((7, 7, 3), 5, np.uint8)
    space = gym.spaces.Dict(
        {"image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), "direction": gym.spaces.Discrete(4)}
    )
    env = apply(Described(space, {"image": grid, "direction": 1}), ["grid_as_image"])
    out, _ = env.reset()
    np.testing.assert_array_equal(out, grid)
    assert out.dtype == np.uint8 and env.observation_desc["shape"] == [7, 7, 3]


def test_joint_action_turns_a_tuple_of_discretes_into_one_multi_discrete():
    team = gym.spaces.Tuple((gym.spaces.Discrete(3, start=1), gym.spaces.Discrete(2)))
    inner = Described(gym.spaces.Box(0.0, 1.0, (1,)), np.zeros(1), act_space=team)
    env = apply(inner, ["joint_action"])
    assert env.action_desc["type"] == "MultiDiscrete"
    np.testing.assert_array_equal(env.action_desc["nvec"], [3, 2])
    env.step(np.array([2, 1]))
    assert inner.actions == [(3, 1)]  # each agent's action shifted back by its start
    plain = Described(gym.spaces.Box(0.0, 1.0, (1,)), np.zeros(1))
    assert apply(plain, ["joint_action"]) is plain


def test_sum_reward_adds_the_objectives():
    env = apply(
        Described(gym.spaces.Box(0.0, 1.0, (1,)), np.zeros(1), reward=np.array([1.0, 2.5, -0.5])),
        ["sum_reward"],
    )
    reward = env.step(0)[1]
    assert reward == 3.0 and isinstance(reward, float)


def test_step_limit_cuts_only_episodes_that_run_past_it():
    env = StepLimit(Described(gym.spaces.Box(0.0, 1.0, (1,)), np.zeros(1)), limit=3)
    env.reset()
    flags = [env.step(0)[3:] for _ in range(3)]
    assert [t for t, _ in flags] == [False, False, True] and flags[-1][1] == {"ldm_cut": True}
    env.reset()  # the count starts again
    assert env.step(0)[3] is False
    ends = StepLimit(Described(gym.spaces.Box(0.0, 1.0, (1,)), np.zeros(1), end_after=3), 3)
    ends.reset()
    _, _, terminated, truncated, info = [ends.step(0) for _ in range(3)][-1]
    assert terminated and not truncated and "ldm_cut" not in info  # it ended on its own


def test_the_default_step_limit_cuts_only_envs_without_a_time_limit_of_their_own():
    # a rule for envs whose episodes never end (bandits, trial streams): the hub cuts their
    # episodes at the default; Pendulum keeps its registered 200 steps. CliffWalking is
    # registered without a limit (the catalog declares one; set to None here)
    from ldm.envs import make, sb3_vec_env
    from ldm.envs.worker.episode_wrappers import has_time_limit
    from ldm.refgen.record import RecordingVecEnv

    assert has_time_limit(gym.make("CartPole-v1"))
    assert not has_time_limit(gym.make("CliffWalking-v1"))
    pend = make("classic-control/Pendulum-v1", ldm_default_step_limit=5)
    pend.reset(seed=0)
    assert not any(pend.step(np.zeros(1, np.float32))[3] for _ in range(10))
    pend.close()
    venv = RecordingVecEnv(
        sb3_vec_env("toy-text/CliffWalking-v1", 2, ldm_step_limit=None, ldm_default_step_limit=7),
        None,
        step_limit=7,
    )
    venv.seed(0)
    venv.reset()
    dones = [venv.step(np.zeros(2, np.int64))[2] for _ in range(15)]  # up: stays in place
    venv.close()
    assert [t for t, d in enumerate(dones) if d.any()] == [6, 13]
    assert venv.cut_episodes == 4 and len(venv.episode_returns) == 4


class Lives(Described):
    """A scripted Atari-like game: lives drop on the given steps; FIRE is action 1."""

    def __init__(self, lose_at, meanings=("NOOP", "FIRE", "RIGHT", "LEFT"), lives=3):
        super().__init__(gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), np.zeros((64, 64, 3)))
        self.lose_at, self.meanings, self.start_lives = set(lose_at), list(meanings), lives

    def get_action_meanings(self):
        return self.meanings

    def reset(self, seed=None, options=None):
        self.lives, self.steps = self.start_lives, 0
        return self.obs, {"lives": self.lives}

    def step(self, action):
        self.actions.append(action)
        self.steps += 1
        if self.steps in self.lose_at:
            self.lives -= 1
        reward = 10.0 if action == 1 else 1.0
        return self.obs, reward, self.lives == 0, False, {"lives": self.lives}


def test_fire_on_life_loss_presses_fire_after_reset_and_each_lost_life():
    game = Lives(lose_at={4, 6}, lives=2)  # the game's own step count, FIREs included
    env = apply(game, ["fire_on_life_loss"])
    env.reset(seed=0)
    assert game.actions == [1]  # FIRE after the reset (its reward is not returned)
    rewards = [env.step(0)[1] for _ in range(2)]
    assert game.actions == [1, 0, 0] and rewards == [1.0, 1.0]
    # step 3 loses a life: FIRE follows at once, its reward added to the losing step's
    obs, reward, terminated, truncated, info = env.step(2)
    assert game.actions == [1, 0, 0, 2, 1] and reward == 11.0 and info["lives"] == 1
    # the next step loses the last life: the episode ends there and nothing more is pressed
    obs, reward, terminated, truncated, info = env.step(0)
    assert terminated and game.actions[-1] == 0 and reward == 1.0 and info["lives"] == 0


def test_fire_on_life_loss_leaves_games_without_fire_unwrapped():
    game = Lives(lose_at={2}, meanings=("NOOP", "UP", "DOWN"))
    assert apply(game, ["fire_on_life_loss"]) is game


def test_derive_reset_seeds_makes_every_reset_after_a_seeded_one_reproducible():
    def seeds_passed(first):
        env = Described(gym.spaces.Box(-1.0, 1.0, (2,)), np.zeros(2, np.float32))
        wrapped = apply(env, ["derive_reset_seeds"])
        return [wrapped.reset(seed=s)[1]["seed"] for s in (None, first, None, None, first, None)]

    a, b = seeds_passed(5), seeds_passed(5)
    assert a == b and a[0] is None and a[1] == 5 and a[4] == 5  # before any seed: untouched
    assert all(isinstance(s, int) for s in (a[2], a[3])) and a[2] != a[3]
    assert a[5] == a[2]  # a seeded reset restarts the sequence
    assert seeds_passed(6)[2] != a[2]
