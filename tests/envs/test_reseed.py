"""ldm/envs/worker/reseed.py: each re-seeding wrapper makes a small fake env that fails
`ldm envs check` on its seeds pass it (the check through the hub, in-process)."""

import textwrap

import gymnasium as gym
import numpy as np
import pytest
import tomli_w

from ldm.envs.library.catalog import CATALOG_PATH_ENV, load_catalog
from ldm.envs.library.check import check
from ldm.envs.worker.reseed import ReseedByReconstruction, SettleFirstReset
from ldm.envs.worker.space_desc import describe_space
from ldm.envs.worker.wrappers import apply
from ldm.refgen.selection import problem_reason

ENVS = '''
import numpy as np
import gymnasium as gym

class Base(gym.Env):
    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def step(self, action):
        return self.draw(), 0.0, False, False, {}

class Leftover(Base):
    """Its reset reads what the last episode left (lbforaging's player positions)."""
    def __init__(self):
        self.episodes = 0
    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.episodes += 1
        return self.draw() + min(self.episodes, 5), {}
    def draw(self):
        return self.np_random.uniform(-1, 1, 2)

class AtConstruction(Base):
    """Seeded only at construction (procgen's rand_seed); reset ignores its seed."""
    def __init__(self, rand_seed=None):
        self.rng = np.random.default_rng(rand_seed)
    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.draw(), {}
    def draw(self):
        return self.rng.uniform(-1, 1, 2)

class OwnSeedMethod(Base):
    """Draws from a generator only its own seed() seeds (neurogym's self.rng)."""
    def __init__(self):
        self.rng = np.random.RandomState()
    def seed(self, seed=None):
        self.rng = np.random.RandomState(seed)
    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.draw(), {}
    def draw(self):
        return self.rng.uniform(-1, 1, 2)

class FirstResetDiffers(Base):
    """A fresh instance's first reset differs in its last bits (safety-gymnasium's Car)."""
    def __init__(self):
        self.fresh = True
    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        nudge, self.fresh = (1e-12 if self.fresh else 0.0), False
        return self.draw() + nudge, {}
    def draw(self):
        return self.np_random.uniform(-1, 1, 2)

class FromItsSpace(Base):
    """Draws its next state from its observation space (cymnasium's HIDS)."""
    def __init__(self):
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float64)
    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2), {}
    def draw(self):
        return self.observation_space.sample()

for cls in (Leftover, AtConstruction, OwnSeedMethod, FirstResetDiffers, FromItsSpace):
    gym.register(cls.__name__ + "-v0", entry_point=cls)
'''


@pytest.fixture
def reseed_lib(tmp_path, monkeypatch):
    """`write(wrappers, make_kwargs)`: the fake library's spec in a user catalog."""
    (tmp_path / "reseed_envs.py").write_text(textwrap.dedent(ENVS))
    monkeypatch.setenv(CATALOG_PATH_ENV, str(tmp_path))
    names = [
        "Leftover-v0",
        "AtConstruction-v0",
        "OwnSeedMethod-v0",
        "FirstResetDiffers-v0",
        "FromItsSpace-v0",
    ]

    def write(wrappers=(), make_kwargs=None):
        spec = {
            "name": "reseedlib",
            "domain": "test",
            "imports": ["reseed_envs"],
            "python_path": [str(tmp_path)],
            "envs": names,
            "wrappers": list(wrappers),
            "make_kwargs": make_kwargs or {},
        }
        (tmp_path / "reseedlib.toml").write_text(tomli_w.dumps(spec))
        load_catalog.cache_clear()

    yield write
    load_catalog.cache_clear()


def _problems(env):
    return check(f"reseedlib/{env}", backend="inprocess").problems


def _seed_problem(problems):
    """Whether the check failed on seeds, as the wide run's selection reads its problems."""
    return bool(problems) and problem_reason(tuple(problems)) == "check: seeds do not reproduce"


@pytest.mark.parametrize(
    "env, wrappers, make_kwargs",
    [
        ("Leftover-v0", ["reseed_by_reconstruction"], {}),
        (
            "AtConstruction-v0",
            ["reseed_by_reconstruction"],
            {"ldm_seed_kwarg": "rand_seed"},
        ),
        ("OwnSeedMethod-v0", ["seed_method_on_reset"], {}),
        ("FirstResetDiffers-v0", ["settle_first_reset"], {}),
        ("FromItsSpace-v0", ["seed_spaces"], {}),
    ],
)
def test_the_check_fails_without_the_wrapper_and_passes_with_it(
    reseed_lib, env, wrappers, make_kwargs
):
    reseed_lib(make_kwargs=make_kwargs if "ldm_seed_kwarg" not in make_kwargs else {})
    assert _seed_problem(_problems(env))
    reseed_lib(wrappers, make_kwargs)
    assert _problems(env) == []


def test_reconstruction_without_the_seed_kwarg_does_not_fix_a_construction_seed(reseed_lib):
    reseed_lib(["reseed_by_reconstruction"])
    assert _seed_problem(_problems("AtConstruction-v0"))


def test_a_seed_kwarg_without_its_wrapper_is_an_error_naming_the_wrapper(reseed_lib):
    reseed_lib(make_kwargs={"ldm_seed_kwarg": "rand_seed"})
    (problem,) = _problems("AtConstruction-v0")
    assert "make failed" in problem and "reseed_by_reconstruction" in problem


class Counting:
    """A described env (as the worker sees it) that counts its resets and closes."""

    made = 0

    def __init__(self):
        Counting.made += 1
        space = gym.spaces.Box(-1.0, 1.0, (2,))
        self.observation_desc = self.action_desc = describe_space(space)
        self.resets, self.closed = [], False

    def reset(self, seed=None, options=None):
        self.resets.append(seed)
        return np.zeros(2), {}

    def close(self):
        self.closed = True


def test_reconstruction_remakes_on_seeded_resets_only_and_closes_the_old_env():
    first = Counting()
    made = []

    def remake(seed):
        made.append(seed)
        env = Counting()
        return env

    remake.seed_kwarg = None
    first.ldm_remake = remake
    env = apply(first, ["reseed_by_reconstruction"])
    env.reset()  # unseeded before any seed: the same instance
    assert made == [] and first.resets == [None]
    env.reset(seed=7)
    assert made == [None] and first.closed and env.env.resets == [7]
    second = env.env
    env.reset()  # a rollout's next episode continues the same instance
    assert env.env is second and second.resets == [7, None]


def test_reconstruction_must_come_first_among_the_wrappers():
    env = Counting()
    env.ldm_remake = lambda seed: Counting()
    with pytest.raises(ValueError, match="must be the first of a spec's `wrappers`"):
        ReseedByReconstruction(SettleFirstReset(env))
