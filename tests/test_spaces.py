import math

import gymnasium as gym
import numpy as np
import pytest

from ldm.errors import SpaceError
from ldm.spaces import SpaceSpec, check_limits, from_gym_space, to_gym_space


@pytest.mark.parametrize(
    "space, kind, flat",
    [
        (gym.spaces.Box(-1, 1, (3,)), "continuous", 3),
        (gym.spaces.Box(0, 255, (84, 84, 3), np.uint8), "image", 0),
        (gym.spaces.Discrete(5, start=2), "discrete", 1),
        (gym.spaces.MultiDiscrete([3, 4]), "multi_discrete", 2),
        (gym.spaces.MultiBinary(6), "multi_binary", 6),
    ],
)
def test_from_gym_space_round_trips_through_json(space, kind, flat):
    spec = from_gym_space(space)
    assert spec.kind == kind and spec.flat_dim == flat
    assert spec.value_shape == np.asarray(space.sample()).shape  # one value as an array
    assert SpaceSpec.from_json(spec.to_json()) == spec
    back = to_gym_space(spec)
    assert type(back) is type(space) and from_gym_space(back) == spec


def test_subclasses_of_standard_spaces_are_described_by_their_base():
    class Bounded(gym.spaces.Box):
        pass

    class Choice(gym.spaces.Discrete):
        pass

    assert from_gym_space(Bounded(-2, 2, (3,))) == from_gym_space(gym.spaces.Box(-2, 2, (3,)))
    assert from_gym_space(Choice(4, start=1)).describe() == "discrete(4)"


def test_infinite_bounds_survive_json():
    spec = from_gym_space(gym.spaces.Box(-np.inf, np.inf, (2,)))
    back = SpaceSpec.from_json(spec.to_json())
    assert back.low == (-math.inf, -math.inf) and not back.is_bounded.any()


def test_limits_name_env_limit_and_size():
    spec = from_gym_space(gym.spaces.Box(-1, 1, (200,)))
    with pytest.raises(SpaceError, match=r"lib/Big-v0.*200 dims.*limit of 128"):
        check_limits(spec, "observation", "lib/Big-v0")
    act = from_gym_space(gym.spaces.Box(-1, 1, (29,)))
    with pytest.raises(SpaceError, match="limit of 28"):
        check_limits(act, "action", "lib/Arm-v0")
    check_limits(from_gym_space(gym.spaces.Box(-1, 1, (28,))), "action", "ok")


def test_dict_space_needs_a_wrapper():
    with pytest.raises(SpaceError, match="flatten_dict"):
        from_gym_space(gym.spaces.Dict({"a": gym.spaces.Discrete(2)}))


def test_bad_spec_fields_are_named():
    with pytest.raises(SpaceError, match="kind"):
        SpaceSpec("vector", (3,))
    with pytest.raises(SpaceError, match="one bound per"):
        SpaceSpec("continuous", (3,), low=(0.0,), high=(1.0,))
