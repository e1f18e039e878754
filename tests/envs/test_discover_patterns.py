"""Discovery's registration patterns, documented constructor arguments, multi-agent envs and
partial specs, on small fake packages written here (issue 38).

The fast tests run the probe's functions in this process on packages put on sys.path (the
probe runs the same code in a library's venv); the slow one discovers a real distribution
built into its own venv and stops one discovery midway.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import tomllib

from ldm.envs.library import probe, probe_docs, probe_envs
from ldm.envs.library.catalog import LibrarySpec, load_spec
from ldm.envs.library.discover.partial import PartialSpec
from ldm.envs.library.discover.record import write_discovery
from ldm.envs.library.registry import list_envs
from ldm.envs.library.trial import EnvTrial
from ldm.envs.worker import legacy, space_desc, wrappers
from tests.envs.fakepkg import fake_distribution

CORE = '''
import numpy as np
import gymnasium as gym


class Walk(gym.Env):
    """A walk on a line.

    >>> env = Walk(length=3, weights=[0.5, 0.25])
    """

    def __init__(self, length, weights, scale=1.0):
        self.length, self.weights = length, np.asarray(weights)
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(2, self.weights.sum(), np.float32), 1.0, self.t >= self.length, False, {}


class Matrix(Walk):
    """An MDP from matrices the user gives."""

    def __init__(self, P, R):
        super().__init__(len(P), R)


class Undocumented(Walk):
    def __init__(self, secret):
        super().__init__(3, [1.0])
'''

README = """
# {pkg}

```python
import gymnasium as gym
import {pkg}.hidden
env = gym.make("{prefix}-Matrix-v0", P=np.array([[0.5, 0.5], [1.0, 0.0]]), R=[1, 2])
```
"""

HIDDEN = """
import gymnasium as gym
from gymnasium.envs.registration import register as _reg

specs = [dict(id="{prefix}-Matrix-v0", entry_point="{pkg}.core:Matrix")]
for s in specs:
    _reg(**s)  # no `register("` in the source: only the README names this module
"""

FUNCTION = """
import gymnasium as gym


def register_envs():
    gym.register("{prefix}-Walk-v0", entry_point="{pkg}.core:Walk")
    gym.register("{prefix}-Undocumented-v0", entry_point="{pkg}.core:Undocumented")


def register(package):
    if package == "gymnasium":
        gym.register("{prefix}-Api-v0", entry_point="{pkg}.core:Walk", kwargs={{"length": 2, "weights": [1.0]}})
"""


def write_package(root: Path, pkg: str, prefix: str) -> Path:
    """A package whose envs register only through a function (`register_envs()`, and
    `register("gymnasium")`) and a module its README names; none on import."""
    d = root / pkg
    d.mkdir(parents=True)
    (d / "__init__.py").write_text("from .api import register, register_envs  # noqa\n")
    (d / "core.py").write_text(CORE)
    (d / "api.py").write_text(FUNCTION.format(pkg=pkg, prefix=prefix))
    (d / "hidden.py").write_text(HIDDEN.format(pkg=pkg, prefix=prefix))
    (d / "README.md").write_text(README.format(pkg=pkg, prefix=prefix))
    return d


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package on sys.path; the ids it registers are removed from gymnasium's registry."""
    pkg, prefix = "ldmfake_patterns", "LdmFake"
    write_package(tmp_path, pkg, prefix)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(gym.registry)
    yield pkg, prefix
    for rid in set(gym.registry) - before:
        del gym.registry[rid]
    for name in [m for m in sys.modules if m.startswith(pkg)]:
        del sys.modules[name]


# -- registration patterns -------------------------------------------------------------------
def test_probe_finds_registration_functions_and_a_module_the_readme_names(fake_package):
    pkg, prefix = fake_package
    found = probe.find_modules(pkg.replace("_", "-"))
    # the README's import, then the functions whose name and signature say they register
    # (by the package's public names: `pkg.register` re-exports `pkg.api.register`)
    assert found["modules"] == [
        f"{pkg}.hidden",
        f"{pkg}:register('gymnasium')",
        f"{pkg}:register_envs",
    ]
    assert found["api"] == "gymnasium"
    assert {f"{prefix}-Matrix-v0", f"{prefix}-Walk-v0", f"{prefix}-Api-v0"} <= set(gym.registry)


def test_worker_calls_an_import_with_literal_arguments(fake_package):
    from ldm.envs.worker.env_imports import import_name as _import

    pkg, prefix = fake_package
    _import(f"{pkg}.api:register('gymnasium')")
    assert gym.spec(f"{prefix}-Api-v0").kwargs == {"length": 2, "weights": [1.0]}


def test_an_env_class_nothing_registers_is_registered_by_its_name(tmp_path, monkeypatch):
    from ldm.envs.worker.env_imports import import_name as _import

    d = tmp_path / "ldmfake_classes"
    d.mkdir()
    (d / "core.py").write_text(CORE)
    (d / "__init__.py").write_text("from .core import Walk as _Hidden, Matrix  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(gym.registry)
    try:
        found = probe.find_modules("ldmfake-classes")
        # each env class once, by its first public name (the package's, else its module's)
        assert found["modules"] == [
            "ldmfake_classes:Matrix",
            "ldmfake_classes.core:Undocumented",
            "ldmfake_classes.core:Walk",
        ]
        assert found["api"] == "gymnasium"
        assert gym.spec("Matrix-v0").entry_point == "ldmfake_classes.core:Matrix"
        del gym.registry["Matrix-v0"]
        _import("ldmfake_classes:Matrix")  # the worker registers it the same way
        assert gym.spec("Matrix-v0").entry_point == "ldmfake_classes.core:Matrix"
    finally:
        for rid in set(gym.registry) - before:
            del gym.registry[rid]
        for name in [m for m in sys.modules if m.startswith("ldmfake_classes")]:
            del sys.modules[name]


def test_docs_findings_read_fenced_blocks_sessions_and_register_calls():
    text = textwrap.dedent(
        """
        ```bash
        pip install thing
        ```
        ```python
        import gym_classics as gc
        gc.register('gymnasium')
        env = gym.make("Thing-v0", size=-3, grid=np.array([[1, 0]]), fn=lambda x: x)
        ```
        ```python
        p = np.array([0.5, 0.5])
        env = gym.make("Other-v0", p=p, q=q)
        ```
        >>> env = ThingEnv(4, name="a")
        """
    )
    found = probe_docs.findings([("README", text)])
    assert found["imports"] == ["gym_classics"]
    assert found["registers"] == [("gym_classics", "register", ["gymnasium"])]
    # literal values only: the lambda is left out; np.array(...) is its literal
    # a name the snippet assigned a literal to is that literal; an unknown name is left out
    assert found["make"] == [
        ("Thing-v0", {"size": -3, "grid": [[1, 0]]}, "README"),
        ("Other-v0", {"p": [0.5, 0.5]}, "README"),
    ]
    assert found["calls"] == [("ThingEnv", [4], {"name": "a"}, "README")]


# -- constructor arguments -------------------------------------------------------------------
def test_documented_kwargs_come_from_the_readme_and_the_docstring(fake_package):
    pkg, prefix = fake_package
    probe.find_modules(pkg.replace("_", "-"))
    ids = [
        f"{prefix}-Matrix-v0",
        f"{prefix}-Walk-v0",
        f"{prefix}-Undocumented-v0",
        f"{prefix}-Api-v0",
    ]
    found = probe_envs.documented_kwargs(pkg.replace("_", "-"), "gymnasium", [], ids)
    # the README's make call gives the matrices; the class docstring's example the walk's
    assert found[f"{prefix}-Matrix-v0"]["kwargs"] == {"P": [[0.5, 0.5], [1.0, 0.0]], "R": [1, 2]}
    assert found[f"{prefix}-Walk-v0"]["kwargs"] == {"length": 3, "weights": [0.5, 0.25]}
    assert found[f"{prefix}-Walk-v0"]["missing"] == []
    # nothing documents `secret`; the registration already gives Api-v0 what it needs
    assert found[f"{prefix}-Undocumented-v0"]["missing"] == ["secret"]
    assert f"{prefix}-Api-v0" not in found


def test_families_name_each_envs_class(fake_package):
    pkg, prefix = fake_package
    probe.find_modules(pkg.replace("_", "-"))
    fams = probe_envs.families("gymnasium", [], [f"{prefix}-Walk-v0", f"{prefix}-Api-v0"])
    assert fams == {f"{prefix}-Walk-v0": f"{pkg}.core:Walk", f"{prefix}-Api-v0": f"{pkg}.core:Walk"}


# -- multi-agent envs behind one agent's view --------------------------------------------------
class _Team:
    """What the worker holds: an env with its space descriptions."""

    def __init__(self, action_space, reward, done):
        self.observation_desc = space_desc.describe_space(gym.spaces.Discrete(2))
        self.action_desc = space_desc.describe_space(action_space)
        self.reward, self.done, self.got = reward, done, None

    def step(self, action):
        self.got = action
        return 0, self.reward, self.done, False, {}


def test_a_list_of_agent_spaces_is_a_tuple_and_box_actions_join_into_one_box():
    boxes = [
        gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        gym.spaces.Box(0.0, 5.0, (1, 1), np.float64),
    ]
    desc = space_desc.describe_space(list(boxes))  # ma-gym's MultiAgentActionSpace is a list
    assert desc["type"] == "Tuple" and len(desc["spaces"]) == 2
    inner = _Team(list(boxes), [1.0, 2.5], [False, True])
    env = wrappers.apply(inner, ["joint_action", "sum_reward"])
    assert env.action_desc["shape"] == [3]
    assert list(env.action_desc["high"]) == [1.0, 1.0, 5.0]
    _, reward, terminated, _, _ = env.step(np.array([0.5, -0.5, 4.0]))
    first, second = inner.got
    assert first.shape == (2,) and second.shape == (1, 1) and second.dtype == np.float64
    assert second[0, 0] == 4.0 and reward == 3.5
    assert terminated is False  # one agent done is not the team done


class _Pair(gym.Env):
    """A team of two whose spaces describe one agent (as gym-multigrid): step takes a list."""

    observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def __init__(self):
        self.agents = ["red", "blue"]
        self.got = None

    def reset(self, seed=None, options=None):
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        self.got = list(action)  # an int here fails as gym-multigrid does: no len()
        return np.zeros((8, 8, 3), np.uint8), np.array([1.0, 2.0]), False, False, {}


def test_a_team_declared_as_one_agent_gets_one_action_per_agent():
    from ldm.envs.worker.env_instance import Instance
    from ldm.envs.worker.env_instance import action_for as _action

    inst = Instance(_Pair(), "gymnasium", ["team_actions", "sum_reward"])
    assert inst.env.action_desc["type"] == "MultiDiscrete"
    assert list(inst.env.action_desc["nvec"]) == [4, 4] and not inst.discrete
    _, reward, *_ = inst.env.step(_action(inst, np.array([3, 1])))
    assert inst.raw.got == [3, 1] and reward == 3.0
    # an env without a team is left as it is
    single = Instance(gym.make("CartPole-v1"), "gymnasium", ["team_actions"])
    assert single.discrete and single.env.action_desc["type"] == "Discrete"


def test_a_spec_may_name_every_wrapper_the_worker_has():
    from ldm.envs.library.catalog import WRAPPERS

    assert set(WRAPPERS) == set(wrappers.WRAPPERS)  # team_actions was missing from the spec's


def test_mixed_agent_action_kinds_are_left_alone():
    inner = _Team(
        gym.spaces.Tuple([gym.spaces.Discrete(2), gym.spaces.Box(0, 1, (1,))]), 0.0, False
    )
    assert wrappers.apply(inner, ["joint_action"]) is inner


def test_legacy_done_per_agent_ends_the_episode_only_when_every_agent_is_done():
    class Old:
        observation_space = gym.spaces.Discrete(2)
        action_space = [gym.spaces.Discrete(2)] * 2

        def __init__(self):
            self.dones = [False, False]

        def reset(self):
            return 0

        def step(self, action):
            return 0, [0.0, 1.0], self.dones, {}

    old = Old()
    env = legacy.LegacyGymEnv(old)
    assert env.step((0, 1))[2] is False  # bool([False, False]) would have ended it
    old.dones = [True, True]
    assert env.step((0, 1))[2] is True


# -- partial specs ---------------------------------------------------------------------------
def _trial(rid: str) -> EnvTrial:
    box = {
        "kind": "continuous",
        "shape": [2],
        "dtype": "float32",
        "low": [0, 0],
        "high": [1, 1],
        "start": 0,
    }
    disc = {"kind": "discrete", "shape": [], "dtype": "int64", "n": 2, "start": 0}
    return EnvTrial(rid, box, disc)


def test_partial_spec_overlays_what_was_found_on_the_earlier_record(tmp_path):
    path = tmp_path / "lib.toml"
    spec = LibrarySpec(
        name="lib", domain="d", requirements=["lib"], imports=["lib"], path=str(path)
    )
    earlier = {rid: _trial(rid) for rid in ("Old-v0", "Kept-v0")}
    write_discovery(replace(spec, discovery={"seconds": 1.0}), earlier, {"Bad-v0": "boom"})
    spec = load_spec(path)
    partial = PartialSpec(spec, every=0.0)
    partial(spec, "Old-v0", "now it fails")
    partial(spec, "New-v0", _trial("New-v0"))
    written = load_spec(path)
    assert written.envs == ["Kept-v0", "New-v0"]  # Kept-v0 not tried yet: it stays
    assert written.failed == {"Bad-v0": "boom", "Old-v0": "now it fails"}
    assert written.discovery["partial"] is True and written.discovery["tried"] == 2
    envs = {e.id: e for e in list_envs("lib", catalog_dir=str(tmp_path))}
    assert envs["lib/New-v0"].action.n == 2


# -- slow: a whole discovery of a distribution using every pattern -----------------------------
SLOW_INIT = '''
import time

import numpy as np
import gymnasium as gym

from .core import Matrix, Undocumented, Walk


class Team(gym.Env):
    """Two agents, each with its own Box action; a reward and a done flag per agent."""

    observation_space = gym.spaces.Tuple([gym.spaces.Box(0.0, 1.0, (2,), np.float32)] * 2)
    action_space = gym.spaces.Tuple([gym.spaces.Box(-1.0, 1.0, (2,), np.float32)] * 2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return tuple(self.np_random.uniform(0, 1, 2).astype(np.float32) for _ in range(2))

    def step(self, action):
        assert len(action) == 2 and all(np.shape(a) == (2,) for a in action), action
        self.t += 1
        return self._obs(), [1.0, 0.5], [self.t >= 5, self.t >= 3], False, {}


class Sleepy(Walk):
    def __init__(self, pause=1.5):
        super().__init__(3, [1.0])
        self.pause = pause

    def reset(self, seed=None, options=None):
        time.sleep(self.pause)
        return super().reset(seed=seed)


def register_envs():
    """Registers the envs (importing the package registers none)."""
    gym.register("Slow-Walk-v0", entry_point=Walk)
    gym.register("Slow-Matrix-v0", entry_point=Matrix)
    gym.register("Slow-Undocumented-v0", entry_point=Undocumented)
    gym.register("Slow-Team-v0", entry_point=Team)
    for k in range(4):
        gym.register("Slow-Sleepy%d-v0" % k, entry_point=Sleepy)
'''

SLOW_README = """
# ldmslow

```python
import gymnasium as gym
import ldmslow
ldmslow.register_envs()
env = gym.make("Slow-Matrix-v0", P=[[0.5, 0.5], [1.0, 0.0]], R=[1, 2])
```
"""


def _kill_when_partial(cmd: list[str], spec_path: Path, env: dict, limit: float = 240) -> dict:
    """Run a discovery and kill it (and its workers) once its partial spec is on disk."""
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and proc.poll() is None:
            if spec_path.exists():
                data = tomllib.loads(spec_path.read_text())
                if data.get("discovery", {}).get("partial") and data.get("envs"):
                    return data
            time.sleep(0.2)
        raise AssertionError(f"no partial spec with envs at {spec_path} (exit {proc.poll()})")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_discover_alone_takes_a_function_registered_library_with_arguments_and_a_team(
    tmp_path, monkeypatch
):
    from ldm.envs.library.catalog import load_catalog
    from ldm.envs.library.discover import discover_library

    monkeypatch.setenv("LDM_HOME", str(tmp_path / "home"))
    req = fake_distribution(
        tmp_path / "src", "ldmslow", {"core.py": CORE, "__init__.py": SLOW_INIT}, SLOW_README
    )
    cat = tmp_path / "catalog"
    spec_path = cat / "ldmslow.toml"
    cat.mkdir()
    env = {**os.environ, "LDM_CATALOG_PATH": str(cat)}
    cmd = [
        str(Path(sys.executable).parent / "ldm"),
        "envs",
        "discover",
        req,
        "--workers",
        "1",
        "--timeout",
        "30",
    ]
    # killed midway (the sleepy envs take seconds each): what it had found is on disk
    data = _kill_when_partial(cmd, spec_path, env)
    assert data["imports"] == ["ldmslow:register_envs"]
    assert data["discovery"]["tried"] >= 1 and "again" in data["discovery"]["note"]
    load_catalog.cache_clear()
    assert list_envs("ldmslow", catalog_dir=str(cat))  # listed from the partial spec

    # again, to the end, with a budget of 2 s per env: the sleepy ones (3 s of resets) fail
    report = discover_library(req, catalog_dir=str(cat), timeout=2.0, workers=2, progress=False)
    spec = load_spec(spec_path)
    assert "partial" not in spec.discovery
    assert sorted(spec.envs) == ["Slow-Matrix-v0", "Slow-Team-v0", "Slow-Walk-v0"]
    assert all("time budget of 2 s" in spec.failed[f"Slow-Sleepy{k}-v0"] for k in range(4)), (
        spec.failed
    )
    # constructor arguments from the README and from the class docstring, recorded
    assert spec.env_kwargs == {
        "Slow-Matrix-v0": {"P": [[0.5, 0.5], [1.0, 0.0]], "R": [1, 2]},
        "Slow-Walk-v0": {"length": 3, "weights": [0.5, 0.25]},
    }
    why = spec.failed["Slow-Undocumented-v0"]
    assert (
        why.startswith("needs constructor arguments secret")
        and 'env_kwargs."Slow-Undocumented-v0"' in why
    )
    assert "1 need a user's constructor arguments" in report.summary()
    # the team: Box actions joined into one Box, rewards summed, done when both agents are
    assert {"flatten_dict", "joint_action", "sum_reward"} <= set(spec.wrappers)
    team = {e.id: e for e in list_envs("ldmslow", catalog_dir=str(cat))}["ldmslow/Slow-Team-v0"]
    assert team.action.kind == "continuous" and team.action.shape == (4,) and team.check_ok
    # families: Matrix and Walk are two classes (Matrix subclasses Walk), Team a third
    assert report.families == 3
    assert team.family == "ldmslow:Team"


def test_a_dict_observation_whose_repr_spans_lines_gets_flatten_dict():
    from ldm.envs.library.discover.trials import AUTO_WRAPPERS

    low = -np.arange(15, dtype=np.float32).reshape(3, 5)  # uneven bounds: printed as arrays
    space = gym.spaces.Dict({"robot": gym.spaces.Box(low, -low + 1, (3, 5), np.float32)})
    first_line = f"observation space {space} (Dict) is not supported".splitlines()[0]
    assert "is not supported" not in first_line  # the reason keeps the first line only
    assert [w for pattern, w in AUTO_WRAPPERS if pattern.search(first_line)] == ["flatten_dict"]
