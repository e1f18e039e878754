"""`ldm envs discover` on small real packages built here: found modules, custom spaces,
retried interpreters, limits with their smaller variants, recorded checks.

The packages are real distributions (pyproject + setuptools) installed into their own venvs by
uv, as a package from PyPI would be; only their location (a local path) differs.
"""

import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from ldm.envs.library.catalog import load_catalog, load_spec
from ldm.envs.library.discover import BUILD_VARIANTS, BuildVariant, discover_library, limit_hints
from ldm.envs.library.registry import list_envs, list_failed
from ldm.envs.library.trial import EnvTrial, outside
from ldm.envs.worker.episode_wrappers import SeedGlobalRNGs
from ldm.envs.worker.space_desc import describe_space, space_kind

ENVS = '''
import numpy as np
import gymnasium as gym
from gymnasium.spaces import Box, Discrete


class Grid(Box):
    """A library's own space class (dispatch by class name would reject it)."""


class Moves(Discrete):
    pass


class GridEnv(gym.Env):
    def __init__(self, size=4, escape=False, global_rng=False):
        self.size, self.escape, self.global_rng = size, escape, global_rng
        self.observation_space = Grid(-1.0, 1.0, (size * size,), np.float32)
        self.action_space = Moves(4)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        rng = np.random if self.global_rng else self.np_random
        obs = rng.uniform(-1, 1, self.size * self.size).astype(np.float32)
        if self.escape:
            obs[0] = -1.31  # outside the declared bounds, as gym-electric-motor does
        return obs

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, self.t >= 5, False, {}


class TeamEnv(gym.Env):
    """Two agents under one controller (as lbforaging): a Tuple of observations, a Tuple of
    Discrete actions (the second starting at 1), a list of rewards."""

    observation_space = gym.spaces.Tuple([Box(0.0, 1.0, (2,), np.float32)] * 2)
    action_space = gym.spaces.Tuple([Discrete(3), Discrete(2, start=1)])

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return tuple(self.np_random.uniform(0, 1, 2).astype(np.float32) for _ in range(2))

    def step(self, action):
        a, b = action
        assert a in (0, 1, 2) and b in (1, 2), action
        self.t += 1
        return self._obs(), [float(a), float(b)], self.t >= 5, False, {}
'''

REGISTER = """
import gymnasium as gym
from {pkg}.core import GridEnv, TeamEnv

for size in (4, 8, 16):
    gym.register("{prefix}-Grid%d-v0" % size, entry_point=GridEnv, kwargs={{"size": size}})
gym.register("{prefix}-Escape-v0", entry_point=GridEnv, kwargs={{"escape": True}})
gym.register("{prefix}-GlobalRng-v0", entry_point=GridEnv, kwargs={{"global_rng": True}})
gym.register("{prefix}-Team-v0", entry_point=TeamEnv)
"""


def make_package(root: Path, dist: str, layout: str, newest_python: str = "") -> str:
    """Write a package whose envs register from `layout` ("envs" submodule or "entry point");
    with `newest_python` ("3.10"), its build fails on any newer Python (as a C extension
    without wheels for the current interpreter does)."""
    pkg = dist.replace("-", "_")
    d = root / dist
    (d / pkg).mkdir(parents=True)
    (d / pkg / "__init__.py").write_text("")  # importing the package registers nothing
    (d / pkg / "core.py").write_text(ENVS)
    prefix = dist.title().replace("-", "")
    entry = ""
    if layout == "envs":
        (d / pkg / "envs.py").write_text(REGISTER.format(pkg=pkg, prefix=prefix))
    else:
        body = textwrap.indent(REGISTER.format(pkg=pkg, prefix=prefix), "    ")
        (d / pkg / "plugin.py").write_text(f"def register_envs():\n{body}\n")
        entry = f'\n[project.entry-points."gymnasium.envs"]\n{pkg} = "{pkg}.plugin:register_envs"\n'
    (d / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "0.1.0"
            requires-python = ">=3.8"
            dependencies = ["gymnasium>=0.29", "numpy"]

            [tool.setuptools]
            packages = ["{pkg}"]
            """
        )
        + entry
    )
    if newest_python:
        major, minor = newest_python.split(".")
        (d / "setup.py").write_text(
            "import sys\nfrom setuptools import setup\n"
            f"if sys.version_info[:2] > ({major}, {minor}):\n"
            f"    raise RuntimeError('{dist} builds only on Python <= {newest_python}')\n"
            "setup()\n"
        )
    return f"{dist} @ {d.as_uri()}"


@pytest.fixture
def ldm_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LDM_HOME", str(tmp_path / "home"))
    return tmp_path


# -- fast: the pieces ------------------------------------------------------------------------
def test_custom_space_classes_are_described_as_their_base_class():
    class Grid(gym.spaces.Box):
        pass

    class Moves(gym.spaces.Discrete):
        pass

    class Pair(gym.spaces.Tuple):
        pass

    assert space_kind(Grid(0, 1, (3,))) == "Box"
    assert space_kind(Moves(4)) == "Discrete"
    assert describe_space(Moves(4, start=1)) == {"type": "Discrete", "n": 4, "start": 1}
    assert describe_space(Pair([Moves(2), Grid(0, 1, (2,))]))["spaces"][1]["type"] == "Box"
    # a class that only shares a name with a standard space is not taken for one
    assert space_kind(type("Box", (), {})()) is None
    assert describe_space(gym.spaces.Text(5)) == {"type": "Unsupported", "name": "Text"}


def test_outside_names_the_value_index_and_bounds():
    box = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert outside(box, np.zeros(3, np.float32)) is None
    why = outside(box, np.array([0.0, -1.31, 0.0]))
    assert "-1.31" in why and "[1]" in why and "[-1, 1]" in why
    assert "shape" in outside(box, np.zeros(4))
    assert outside(gym.spaces.Discrete(3, start=1), 0) == "0 is outside [1, 4)"


def test_seed_global_rngs_makes_global_draws_reproducible():
    class Env:
        observation_desc = action_desc = {"type": "Box"}

        def reset(self, seed=None, options=None):
            return np.random.uniform(size=2), {}

    env = SeedGlobalRNGs(Env())
    a, _ = env.reset(seed=3)
    np.random.uniform(size=5)
    b, _ = env.reset(seed=3)
    assert np.array_equal(a, b)


def test_joint_action_takes_a_tuple_or_a_dict_of_discrete_actions():
    from ldm.envs.worker.team_wrappers import joint_action

    class Team:
        observation_desc = {"type": "Box"}

        def __init__(self, action_desc):
            self.action_desc, self.taken = action_desc, []

        def step(self, action):
            self.taken.append(action)

    moves = {"type": "Discrete", "n": 4, "start": 0}
    cells = {"type": "Discrete", "n": 3, "start": 1}
    pair = Team({"type": "Tuple", "spaces": [moves, cells]})
    joint_action(pair).step(np.array([2, 0]))
    assert pair.taken == [(2, 1)]  # each part's start added back
    stations = Team({"type": "Dict", "spaces": {"1": cells, "0": moves, "10": moves}})
    wrapped = joint_action(stations)
    assert list(wrapped.action_desc["nvec"]) == [4, 3, 4]  # keys "0", "1", "10", sorted
    wrapped.step(np.array([3, 2, 1]))
    assert stations.taken == [{"0": 3, "1": 3, "10": 1}]
    mixed = Team({"type": "Dict", "spaces": {"a": moves, "b": {"type": "Box"}}})
    assert joint_action(mixed) is mixed  # not all Discrete: left alone


def test_sum_reward_adds_a_vector_or_a_reward_per_agent():
    from ldm.envs.worker.team_wrappers import SumReward

    class Team:
        observation_desc = action_desc = {"type": "Box"}

        def __init__(self, reward):
            self.reward = reward

        def step(self, action):
            return None, self.reward, False, False, {}

    assert SumReward(Team(np.array([1.0, -0.25]))).step(0)[1] == 0.75
    assert SumReward(Team([1, 2, 3])).step(0)[1] == 6.0
    assert SumReward(Team({"0": 0.5, "1": 0.25})).step(0)[1] == 0.75


def test_build_variants_pin_only_what_the_spec_leaves_free():
    from ldm.envs.library.catalog import LibrarySpec

    spec = LibrarySpec(name="x", domain="d", requirements=["x", "numpy>=1.20"])
    built = BuildVariant("3.10", ("numpy<2", "gym==0.26.2")).apply(spec)
    assert built.python == "3.10"
    assert built.requirements == ["x", "numpy>=1.20", "gym==0.26.2"]
    assert BUILD_VARIANTS[0].apply(spec) == spec


def test_limit_hint_names_a_passing_sibling(tmp_path):
    from ldm.envs.library.catalog import LibrarySpec

    spec = LibrarySpec(name="x", domain="d", imports=[], path=str(tmp_path / "x.toml"))
    why = "x/G-16-v0: observation space continuous(256,) has 256 dims, over the limit of 128; declare a wrapper"
    ok = EnvTrial("G-8-v0", {}, {})
    hinted = limit_hints(spec, {"G-16-v0": why}, {"G-8-v0": ok}, probe_params=False)
    assert "over the limit of 128" in hinted["G-16-v0"]
    assert "smaller registered variants pass: G-8-v0" in hinted["G-16-v0"]


def test_recorded_checks_update_only_the_sidecars_check_fields(tmp_path):
    import json

    from ldm.envs.library.discover.record import record_checks

    spec_text = 'name = "lib"\ndomain = "d"\nimports = ["lib"]  # a comment that stays\nenvs = ["A-v0", "B-v0"]\n'
    (tmp_path / "lib.toml").write_text(spec_text)
    space = {"kind": "discrete", "shape": [], "dtype": "int64", "n": 2, "start": 0}
    side = {
        rid: {"observation": space, "action": space, "check": {"ok": False, "problems": ["old"]}}
        for rid in ("A-v0", "B-v0")
    }
    (tmp_path / "lib.spaces.json").write_text(json.dumps(side))
    load_catalog.cache_clear()
    missing = record_checks(
        {"lib/A-v0": [], "lib/B-v0": ["still wrong"], "lib/C-v0": []}, catalog_dir=str(tmp_path)
    )
    assert missing == ["lib/C-v0"]
    envs = {e.id: e for e in list_envs(catalog_dir=str(tmp_path))}
    assert envs["lib/A-v0"].check_ok and envs["lib/B-v0"].problems == ("still wrong",)
    assert envs["lib/A-v0"].observation.n == 2  # the spaces as they were
    assert (tmp_path / "lib.toml").read_text() == spec_text
    load_catalog.cache_clear()


def test_recorded_checks_refresh_the_spaces_a_declared_wrapper_changed(tmp_path):
    import json

    from ldm.envs.library.discover.record import record_checks

    (tmp_path / "lib.toml").write_text('name = "lib"\ndomain = "d"\nenvs = ["A-v0", "B-v0"]\n')
    space = {"kind": "discrete", "shape": [], "dtype": "int64", "n": 2, "start": 0}
    side = {rid: {"observation": space, "action": space} for rid in ("A-v0", "B-v0")}
    (tmp_path / "lib.spaces.json").write_text(json.dumps(side))
    load_catalog.cache_clear()
    # A's wrapper one-hots its Discrete(2) observation; B was checked without new spaces
    box = {"kind": "continuous", "shape": [2], "dtype": "float32", "low": [0.0, 0.0], "high": [1.0, 1.0]}  # fmt: skip
    record_checks(
        {"lib/A-v0": [], "lib/B-v0": []},
        catalog_dir=str(tmp_path),
        spaces={"lib/A-v0": {"observation": box, "action": space}},
    )
    written = json.loads((tmp_path / "lib.spaces.json").read_text())
    assert written["A-v0"]["observation"] == box and written["A-v0"]["check"]["ok"]
    assert written["B-v0"]["observation"] == space  # no spaces given: kept as recorded
    load_catalog.cache_clear()


# -- slow: whole discoveries -----------------------------------------------------------------
@pytest.mark.slow
def test_discover_finds_a_registering_submodule_and_records_checks(ldm_home):
    req = make_package(ldm_home / "src", "ldmtest-subreg", "envs")
    cat = ldm_home / "catalog"
    report = discover_library(req, catalog_dir=str(cat), progress=False, domain="grid worlds")
    spec = load_spec(cat / "ldmtest-subreg.toml")
    assert spec.imports == ["ldmtest_subreg.envs"]
    assert spec.domain == "grid worlds"
    # custom Box/Discrete subclasses are taken as their base classes
    assert sorted(spec.envs) == [
        "LdmtestSubreg-Escape-v0",
        "LdmtestSubreg-GlobalRng-v0",
        "LdmtestSubreg-Grid4-v0",
        "LdmtestSubreg-Grid8-v0",
        "LdmtestSubreg-Team-v0",
    ]
    # the team's Tuple observation, list reward and Tuple action each got their wrapper, and
    # the env drawing from the global generator got seed_global_rngs (it fixed it)
    assert spec.wrappers == ["flatten_dict", "joint_action", "sum_reward", "seed_global_rngs"]
    team = {e.id.split("/")[1]: e for e in list_envs(catalog_dir=str(cat))}["LdmtestSubreg-Team-v0"]
    assert team.observation.shape == (4,) and team.check_ok
    assert team.action.kind == "multi_discrete" and list(team.action.nvec) == [3, 2]
    # over the limit: the reason names it, the smaller sibling and the constructor's knob
    why = spec.failed["LdmtestSubreg-Grid16-v0"]
    assert "256 dims, over the limit of 128" in why
    assert "LdmtestSubreg-Grid4-v0" in why and "size=16" in why
    assert list_failed(catalog_dir=str(cat))[0].reason == why
    # `ldm envs check`'s checks recorded and flagged: the bounds escape, found by the seeded
    # rollouts (run first) and by Gymnasium's check_env (which stops at it); the global-RNG
    # env reproduces its seed
    envs = {e.id.split("/")[1]: e for e in list_envs(catalog_dir=str(cat))}
    assert envs["LdmtestSubreg-Grid4-v0"].check_ok
    escape = envs["LdmtestSubreg-Escape-v0"].problems
    assert "outside the declared bounds" in escape[0], escape
    assert any("not within the observation space" in p for p in escape), escape
    assert envs["LdmtestSubreg-GlobalRng-v0"].check_ok
    assert report.flagged == ["LdmtestSubreg-Escape-v0"]
    assert spec.discovery["seconds"] > 0 and spec.discovery["build"] == "the spec as written"
    # taken out by hand, the wrapper comes back with the next discovery (it fixes the env)
    text = (cat / "ldmtest-subreg.toml").read_text()
    (cat / "ldmtest-subreg.toml").write_text(text.replace('    "seed_global_rngs",\n', ""))
    load_catalog.cache_clear()  # the catalog is cached per process; a user edits between runs
    spec = load_spec(cat / "ldmtest-subreg.toml")
    assert "seed_global_rngs" not in spec.wrappers
    report = discover_library("ldmtest-subreg", catalog_dir=str(cat), progress=False)
    assert "seed_global_rngs" in load_spec(cat / "ldmtest-subreg.toml").wrappers
    assert report.flagged == ["LdmtestSubreg-Escape-v0"]


@pytest.mark.slow
def test_discover_calls_a_gymnasium_entry_point(ldm_home):
    req = make_package(ldm_home / "src", "ldmtest-plugin", "entry point")
    cat = ldm_home / "catalog"
    discover_library(req, catalog_dir=str(cat), progress=False)
    spec = load_spec(cat / "ldmtest-plugin.toml")
    assert spec.imports == ["ldmtest_plugin.plugin:register_envs"]
    assert "LdmtestPlugin-Grid4-v0" in spec.envs


@pytest.mark.slow
def test_discover_retries_an_older_interpreter_and_records_it(ldm_home):
    req = make_package(ldm_home / "src", "ldmtest-oldpy", "envs", newest_python="3.10")
    cat = ldm_home / "catalog"
    discover_library(req, catalog_dir=str(cat), progress=False)
    spec = load_spec(cat / "ldmtest-oldpy.toml")
    assert spec.python == "3.10"
    assert "numpy<2" in spec.requirements
    assert spec.discovery["python"].startswith("3.10.")
    assert spec.discovery["build"] == "Python 3.10 with numpy<2"
    retried = spec.discovery["retried"]  # ldm's Python as written and with numpy<2, 3.12, 3.13
    assert len(retried) == 4 and "builds only on Python <= 3.10" in retried[0]
    assert spec.source.startswith("file://")
    assert "LdmtestOldpy-Grid4-v0" in spec.envs


def test_rediscovery_keeps_a_users_comments_in_the_spec(tmp_path):
    import tomllib

    from ldm.envs.library.discover import spec_text

    path = tmp_path / "lib.toml"
    path.write_text(
        'name = "lib"\ndomain = "games"\n# episodes never end without it\n'
        'make_kwargs = { ldm_step_limit = 100 }\nenvs = [\n    "A-v0",\n]\n'
    )
    data = {**tomllib.loads(path.read_text()), "envs": ["A-v0", "B-v0"], "failed": {"C": "why"}}
    text = spec_text(path, data)
    assert "# episodes never end without it\nmake_kwargs = { ldm_step_limit = 100 }" in text
    assert tomllib.loads(text) == data


def test_missing_requirements_read_from_failure_reasons():
    from ldm.envs.library.catalog import LibrarySpec
    from ldm.envs.library.discover import missing_requirements

    spec = LibrarySpec(name="minigrid", domain="d", requirements=["minigrid==3.2.0"])
    why = 'DependencyNotInstalled: WFC dependencies are missing, please run `pip install "minigrid[wfc]"`'
    assert missing_requirements(why, spec) == ["minigrid[wfc]"]  # an extra of the library itself
    why = "No module named 'cv2'; No module named 'distutils'; No module named 'minigrid.x'"
    assert missing_requirements(why, spec) == ["opencv-python-headless"]  # not stdlib, not itself


# -- dependencies as of a library's release ----------------------------------------------------
def test_archive_date_reads_wheels_and_sdists_and_ignores_reproducible_stamps(tmp_path):
    import datetime
    import io
    import tarfile
    import zipfile

    from ldm.envs.library.discover.requirements import archive_date

    wheel = tmp_path / "lib-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(zipfile.ZipInfo("lib/__init__.py", (2023, 5, 2, 0, 15, 28)), "")
        z.writestr(zipfile.ZipInfo("lib-1.0.dist-info/METADATA", (2023, 5, 3, 9, 0, 0)), "")
    assert archive_date(wheel) == datetime.date(2023, 5, 3)
    sdist = tmp_path / "lib-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        info = tarfile.TarInfo("lib-1.0/setup.py")
        info.mtime = datetime.datetime(2019, 7, 1, 12).timestamp()
        t.addfile(info, io.BytesIO(b""))
    assert archive_date(sdist) == datetime.date(2019, 7, 1)
    stamped = tmp_path / "repro-1.0-py3-none-any.whl"
    with zipfile.ZipFile(stamped, "w") as z:
        z.writestr(zipfile.ZipInfo("repro/__init__.py", (1980, 1, 1, 0, 0, 0)), "")
    assert archive_date(stamped) is None


def test_release_variant_sets_the_date_and_the_spec_checks_it():
    from ldm.envs.library.catalog import LibrarySpec
    from ldm.envs.library.discover.requirements import release_date
    from ldm.errors import EnvError

    variant = next(v for v in BUILD_VARIANTS if v.as_of_release)
    spec = LibrarySpec(name="lib", domain="d", requirements=["lib==1.0"])
    dated = variant.__class__(None, as_of_release=True, before="2024-04-11")
    assert dated.apply(spec).dependencies_before == "2024-04-11"
    assert dated.describe(spec).endswith("dependencies released before 2024-04-11")
    assert dated.apply(spec).env_hash != spec.env_hash  # its own venv
    assert release_date("lib @ file:///src/lib") == "" and release_date("./lib") == ""
    with pytest.raises(EnvError, match="dependencies_before.*write a date"):
        LibrarySpec(name="lib", domain="d", dependencies_before="April 2024")
    with pytest.raises(EnvError, match="dependencies_before.*needs installer 'uv'"):
        LibrarySpec(name="lib", domain="d", dependencies_before="2024-04-11", installer="pip")


@pytest.mark.slow
def test_a_venv_resolves_dependencies_released_before_the_date(ldm_home):
    import subprocess

    from ldm.envs.library.catalog import LibrarySpec
    from ldm.envs.library.venvs import ensure_venv, uv_binary

    spec = LibrarySpec(name="asof", domain="d", dependencies_before="2023-01-01")
    python = ensure_venv(spec)  # numpy and gymnasium, as the hub adds them
    frozen = subprocess.run(
        [uv_binary(), "pip", "freeze", "--python", str(python)], capture_output=True, text=True
    ).stdout
    versions = dict(line.split("==") for line in frozen.splitlines() if "==" in line)
    assert versions["gymnasium"] == "0.27.0"  # 0.27.1 came out in January 2023
    assert versions["numpy"] == "1.24.1"


# -- what a new spec records -------------------------------------------------------------------
def test_project_source_reads_the_repository_from_the_dist_info(tmp_path):
    from ldm.envs.library.discover.requirements import project_source

    site = tmp_path / "venv/lib/python3.11/site-packages"
    (tmp_path / "venv/bin").mkdir(parents=True)
    python = tmp_path / "venv/bin/python"
    for dist, headers in {
        "mo_gymnasium-1.3.2": "Project-URL: Homepage, https://mo.example.org\n"
        "Project-URL: Repository, https://github.com/Farama-Foundation/MO-Gymnasium\n",
        "flappy_bird_gymnasium-0.4.0": "Home-page: https://github.com/markub3327/flappy\n",
        "Box2D-2.3.10": "Home-page: UNKNOWN\n",
    }.items():
        (site / f"{dist}.dist-info").mkdir(parents=True)
        (site / f"{dist}.dist-info/METADATA").write_text(f"Metadata-Version: 2.1\n{headers}\n")
    assert project_source(python, "mo-gymnasium==1.3.2").endswith("/MO-Gymnasium")
    assert project_source(python, "flappy_bird_gymnasium") == "https://github.com/markub3327/flappy"
    assert project_source(python, "box2d") == ""  # no URL in its metadata
    assert project_source(python, "absent") == ""


def test_pin_installed_pins_bare_names_and_extras(monkeypatch):
    import subprocess

    from ldm.envs.library.catalog import LibrarySpec
    from ldm.envs.library.discover import requirements

    frozen = "gymnasium==1.4.0\nhighway-env==1.12.1\nmo-gymnasium==1.3.2\n"
    monkeypatch.setattr(requirements, "ensure_venv", lambda spec: Path("/venv/bin/python"))
    monkeypatch.setattr(
        requirements.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=frozen, stderr=""),
    )
    spec = LibrarySpec(
        name="mo-gymnasium",
        domain="d",
        requirements=["mo-gymnasium", "gymnasium[mujoco]", "highway-env>=1", "x @ file:///x"],
    )
    assert requirements.pin_installed(spec).requirements == [
        "mo-gymnasium==1.3.2",
        "gymnasium[mujoco]==1.4.0",
        "highway-env>=1",
        "x @ file:///x",
    ]
