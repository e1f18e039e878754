"""The checks `ldm envs discover` records (ldm/envs/library/discover/checks.py) are `ldm envs check`'s:
on a small real package whose envs make, reset and step fine but are not seed-exact (one only
with a wrapper, one never), discovery records what `ldm envs check` then finds.

Before, discovery recorded its own lighter trial (observations only, 5 steps): it listed
bandit-gym (constant observation, rewards from the global generator) and gym-mtsim /
lintul3-gym (step infos that differ between two runs from one seed) as passing, and
`ldm envs check` failed them.
"""

import pytest

from ldm.envs.library.catalog import load_catalog, load_spec
from ldm.envs.library.check import check
from ldm.envs.library.discover import discover_library
from ldm.envs.library.registry import _sidecar, list_envs
from tests.envs.fakepkg import fake_distribution

ENVS = '''
import time

import numpy as np
import gymnasium as gym


class Bandit(gym.Env):
    """One state; the reward is drawn from the global generator (as bandit-gym does): the
    observations of two runs from one seed agree, their rewards do not."""

    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action):
        self.t += 1
        return 0, float(np.random.uniform()), self.t >= 5, False, {}


class Clock(gym.Env):
    """Seeded observations, but a step info holding the wall clock: never seed-exact."""

    observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return self.np_random.uniform(0, 1, 2).astype(np.float32)

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, self.t >= 5, False, {"clock": time.perf_counter()}


gym.register("Seeding-Bandit-v0", entry_point=Bandit)
gym.register("Seeding-Clock-v0", entry_point=Clock)
'''


@pytest.mark.slow
def test_discovery_records_the_check_ldm_envs_check_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LDM_HOME", str(tmp_path / "home"))
    cat = tmp_path / "catalog"
    # the catalog dir is not on LDM_CATALOG_PATH while discovery checks: its checks make the
    # envs from the spec it is about to write, not from the catalog
    report = discover_library(
        fake_distribution(tmp_path / "src", "ldmtest-seeding", {"__init__.py": ENVS}),
        catalog_dir=str(cat),
        progress=False,
    )
    spec = load_spec(cat / "ldmtest-seeding.toml")
    assert sorted(spec.envs) == ["Seeding-Bandit-v0", "Seeding-Clock-v0"]
    # the bandit passes only with the global generators seeded: the wrapper is written
    assert spec.wrappers == ["seed_global_rngs"]
    recorded = {e.id: e for e in list_envs(catalog_dir=str(cat))}
    assert recorded["ldmtest-seeding/Seeding-Bandit-v0"].check_ok
    clock = recorded["ldmtest-seeding/Seeding-Clock-v0"].problems
    assert clock and "Deterministic step info" in clock[0]
    assert report.flagged == ["Seeding-Clock-v0"]

    # `ldm envs check` on the written catalog finds what discovery recorded
    monkeypatch.setenv("LDM_CATALOG_PATH", str(cat))
    load_catalog.cache_clear()
    _sidecar.cache_clear()
    for env_id, env in recorded.items():
        assert tuple(check(env_id).problems) == env.problems, env_id
    load_catalog.cache_clear()
