"""ldm/eval/experts.py and experts.toml: expert scores as data, the expert-normalised score."""

from pathlib import Path

import pytest
import tomllib

from ldm.errors import EvalError
from ldm.eval.experts import (
    EXPERTS_FILE,
    SOURCES,
    expert_normalised_score,
    expert_score,
    load_experts,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: the envs of the suite and the quickstart with a published expert or a known optimum; the
#: others (highway, motors, trading, ...) have none and stay out of the file
WITH_EXPERT = {
    "classic-control/CartPole-v1",
    "classic-control/Acrobot-v1",
    "classic-control/Pendulum-v1",
    "gym-legacy-classic/CartPole-v1",
    "gym-legacy-classic/Acrobot-v1",
    "gym-legacy-classic/Pendulum-v1",
    "box2d/LunarLander-v3",
    "box2d/LunarLanderContinuous-v3",
    "box2d/BipedalWalker-v3",
    "mujoco/InvertedPendulum-v5",
    "mujoco/InvertedDoublePendulum-v5",
    "mujoco/Reacher-v5",
    "mujoco/HalfCheetah-v5",
    "minigrid/MiniGrid-Empty-5x5-v0",
    "toy-text/FrozenLake-v1",
    "toy-text/CliffWalking-v1",
    "ale/ALE/Breakout-v5",
    "procgen/procgen-coinrun-v0",
}


def _config_envs(name):
    return set(tomllib.loads((CONFIGS / name).read_text())["refgen"]["envs"])


def test_the_file_covers_the_suite_and_quickstart_envs_that_have_an_expert():
    experts = load_experts()
    assert set(experts) >= WITH_EXPERT
    assert _config_envs("suite.toml") | _config_envs("quickstart.toml") >= WITH_EXPERT
    assert _config_envs("quickstart.toml") <= set(experts)  # every quickstart env has one
    for e in experts.values():
        assert e.source in SOURCES and e.ref
    # the published numbers, as their sources print them
    assert expert_score("box2d/LunarLander-v3").expert == 242.119  # zoo ppo
    assert expert_score("mujoco/HalfCheetah-v5").expert == 12089.939  # zoo tqc
    assert expert_score("mujoco/Reacher-v5").source == "jat"
    assert expert_score("highway-env/highway-fast-v0") is None


def test_expert_normalised_score_numbers():
    # the table: LunarLander, LDM -128, random -229, expert 242
    assert expert_normalised_score(-128.0, -229.0, 242.0) == pytest.approx(101 / 471)
    assert expert_normalised_score(500.0, 21.3, 500.0) == 1.0
    assert expert_normalised_score(21.3, 21.3, 500.0) == 0.0
    assert expert_normalised_score(-300.0, -229.0, 242.0) < 0  # worse than random
    assert expert_normalised_score(1.0, 5.0, 5.0) is None  # expert == random: no scale


def test_a_bad_entry_is_an_error_naming_env_and_field(tmp_path):
    bad = tmp_path / "experts.toml"
    bad.write_text('["a/B-v0"]\nexpert = 1.0\nsource = "zoo"\nref = "x"\nexpret = 2.0\n')
    with pytest.raises(EvalError, match=r"\['a/B-v0'\] has unknown keys \['expret'\]"):
        load_experts(bad)
    bad.write_text('["a/B-v0"]\nexpert = 1.0\nsource = "blog"\nref = "x"\n')
    with pytest.raises(EvalError, match="a/B-v0: expert source 'blog' is not one of"):
        load_experts(bad)
    bad.write_text('["a/B-v0"]\nexpert = 1.0\nsource = "zoo"\nref = ""\n')
    with pytest.raises(EvalError, match="has no `ref`"):
        load_experts(bad)
    assert EXPERTS_FILE.exists()
