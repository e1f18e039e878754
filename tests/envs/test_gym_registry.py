"""The catalog in Gymnasium's registry (ldm/envs/gym_registry.py): `gymnasium.make`,
`gymnasium.make_vec` and `env.spec` recreating the isolated env, as `check_env` uses it."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import ldm  # noqa: F401  (registers the catalog)
import ldm.envs
from ldm.envs.gym_spec import env_spec, gym_id
from ldm.envs.proxy import ProxyEnv
from ldm.envs.vector import ProxyVectorEnv

CARTPOLE = "classic-control/CartPole-v1"


def _fresh(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not out.stderr, out.stderr  # no warning either
    return out.stdout.split()


def test_import_ldm_alone_imports_no_gymnasium_and_registers_when_gymnasium_comes():
    """A fresh interpreter: `import ldm` imports neither gymnasium nor the catalog (nor
    rliable); gymnasium's import then registers the catalog, so `gymnasium.spec`/`make` by a
    library-qualified id work; no env library imported and no worker started by either."""
    code = (
        "import sys, ldm\n"
        "print(*[m in sys.modules for m in ('gymnasium', 'numpy', 'ldm.envs', 'rliable')])\n"
        "import gymnasium as gym\n"
        "spec = gym.spec('ale/ALE-Pong-v5')\n"  # an id with its own namespace, dash-joined
        "print(spec.kwargs['ldm_id'], spec.entry_point, 'ale_py' in sys.modules,\n"
        "      'ldm.envs.proxy' in sys.modules)\n"
        "env = gym.make('classic-control/CartPole-v1', backend='inprocess')\n"
        "print(env.reset(seed=0)[0].shape)\n"
    )
    assert _fresh(code) == ["False"] * 4 + [
        "ale/ALE/Pong-v5",
        "ldm.envs.gym_registry:make_env",
        "False",
        "False",
        "(4,)",
    ]
    assert gym_id("ale/ALE/Pong-v5") == "ale/ALE-Pong-v5" and gym_id(CARTPOLE) == CARTPOLE
    assert env_spec("lib/not an id!") is None  # such an env is made by ldm.envs.make only


def test_gymnasium_imported_before_ldm_gets_the_catalog_at_import_ldm():
    code = (
        "import gymnasium as gym\n"
        "print('classic-control/CartPole-v1' in gym.registry)\n"
        "import ldm\n"
        "print(gym.spec('classic-control/CartPole-v1').kwargs['ldm_id'])\n"
    )
    assert _fresh(code) == ["False", "classic-control/CartPole-v1"]


def test_gymnasium_make_gives_the_isolated_env_with_a_spec_that_remakes_it():
    env = gym.make(CARTPOLE)
    try:
        assert isinstance(env.unwrapped, ProxyEnv) and env.spec.id == CARTPOLE
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4,)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # with a spec, check_env remakes the env in each render mode and renders it
            check_env(env.unwrapped, skip_render_check=False)
        said = [str(w.message) for w in caught]
        assert not [m for m in said if "Not able to test alternative render modes" in m], said
        again = env.spec.make(render_mode="rgb_array")
        try:
            again.reset(seed=0)
            assert again.render().shape == (400, 600, 3)
        finally:
            again.close()
    finally:
        env.close()
    # an env made by ldm.envs.make has the same spec, with how it was made
    direct = ldm.envs.make(CARTPOLE, backend="inprocess")
    try:
        assert direct.spec.id == CARTPOLE and direct.spec.kwargs["backend"] == "inprocess"
        remade = gym.make(direct.spec)
        assert remade.unwrapped.spec.kwargs["ldm_id"] == CARTPOLE
        remade.close()
    finally:
        direct.close()


def test_gymnasium_make_vec_uses_the_hubs_vector_env():
    venv = gym.make_vec(CARTPOLE, 3, workers=1)
    try:
        assert isinstance(venv.unwrapped, ProxyVectorEnv) and venv.num_envs == 3
        obs, _ = venv.reset(seed=0)
        obs, rewards, *_ = venv.step(np.zeros(3, np.int64))
        assert obs.shape == (3, 4) and rewards.tolist() == [1.0, 1.0, 1.0]
        assert venv.spec.kwargs["vectorization_mode"] == "vector_entry_point"
    finally:
        venv.close()
