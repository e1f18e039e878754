import textwrap
from pathlib import Path

import pytest

from ldm.envs.library.catalog import LibrarySpec


@pytest.fixture(scope="session")
def faulty_module(tmp_path_factory) -> Path:
    """A tiny env library on disk whose envs crash, hang or raise on demand."""
    d = tmp_path_factory.mktemp("faulty")
    (d / "faulty_envs.py").write_text(
        textwrap.dedent(
            """
            import os, time
            import numpy as np
            import gymnasium as gym

            class Faulty(gym.Env):
                def __init__(self, mode="ok"):
                    self.mode = mode
                    self.observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
                    self.action_space = gym.spaces.Discrete(2)
                    self.t = 0
                def reset(self, seed=None, options=None):
                    super().reset(seed=seed)
                    self.t = 0
                    if seed is not None:  # mode "slow": the env reset with seed 100 is slow
                        self.slow = self.mode == "slow" and seed == 100
                    return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}
                def step(self, action):
                    self.t += 1
                    if getattr(self, "slow", False):
                        time.sleep(0.5)
                    if self.t == 3:
                        if self.mode == "crash":
                            import sys; sys.stderr.write("simulator exploded\\n"); sys.stderr.flush()
                            os._exit(3)
                        if self.mode == "hang":
                            time.sleep(3600)
                        if self.mode == "raise":
                            raise RuntimeError("bad physics at step 3")
                    if self.mode == "badobs":  # breaks its own observation space
                        return np.zeros(4, np.float32), 1.0, False, False, {}
                    if self.mode == "info":  # numeric infos, a late key, a string at step 5
                        info = {"t": np.int64(self.t), "x": self.t / 3, "odd": self.t % 2 == 1}
                        info.update({"late": 2.5} if self.t >= 7 else {})
                        info.update({"note": "five"} if self.t == 5 else {})
                        return np.zeros(3, np.float32), 1.0, self.t >= 10, False, info
                    return np.zeros(3, np.float32), 1.0, self.t >= 10, False, {}

            for mode in ("ok", "crash", "hang", "raise", "slow", "badobs", "info"):
                gym.register(f"Faulty-{mode}-v0", entry_point=Faulty, kwargs={"mode": mode})
            """
        )
    )
    return d


@pytest.fixture
def faulty_spec(faulty_module) -> LibrarySpec:
    return LibrarySpec(
        name="faulty",
        domain="test",
        requirements=["gymnasium==1.4.0", "numpy>=2"],
        imports=["faulty_envs"],
        python_path=[str(faulty_module)],
        path=str(faulty_module / "faulty.toml"),
    )
