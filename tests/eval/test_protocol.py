"""The evaluation protocol's failure paths (ldm/eval/protocol.py)."""

import numpy as np

import ldm.envs
from ldm.errors import EnvError
from ldm.eval.agents import Agent
from ldm.eval.config import EvalConfig
from ldm.eval.protocol import EnvRun, rollout_seeds, run_protocol
from ldm.spaces import SpaceSpec

OBS = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
ACT = SpaceSpec("discrete", (), "int64", n=2)


class _DyingVecEnv:
    """Starts, then its worker dies on the first step."""

    def __init__(self, n: int) -> None:
        self.n = n

    def reset(self, seed=None):
        return np.zeros((self.n, 4), np.float32), {}

    def step_send(self, actions) -> None:
        pass

    def step_recv(self):
        raise EnvError("bad/Dying-v0: worker process died (exit code -9) during 'step'")

    def close(self) -> None:
        pass


class _Zeros(Agent):
    def act(self, observations):
        return [np.int64(0) for _ in observations]


def test_a_failed_restart_is_reported_and_the_other_envs_finish(monkeypatch):
    real = ldm.envs.make_vec
    opened = {"bad/Dying-v0": 0}

    def make_vec(env_id, num_envs, **kwargs):
        if env_id != "bad/Dying-v0":
            return real(env_id, num_envs, backend="inprocess", workers=1)
        opened[env_id] += 1
        if opened[env_id] > 1:  # the restart after the death fails
            raise EnvError("bad/Dying-v0: worker could not start: simulator licence expired")
        return _DyingVecEnv(num_envs)

    monkeypatch.setattr(ldm.envs, "make_vec", make_vec)
    cfg = EvalConfig(rollouts=2, episodes=2, retries=1, backend="inprocess")
    runs = []
    for k, env_id in enumerate(["bad/Dying-v0", "classic-control/CartPole-v1"]):
        run = EnvRun(env_id, OBS, ACT, rollout_seeds(env_id, cfg))
        run.slots = [2 * k, 2 * k + 1]
        runs.append(run)
    run_protocol(runs, _Zeros(), cfg, progress=False)
    bad, good = runs
    assert opened["bad/Dying-v0"] == 2
    assert bad.error is not None and "simulator licence expired" in bad.error
    assert "restart" in bad.error
    assert [len(r) for r in good.returns] == [2, 2] and good.error is None
    assert all(9 <= x <= 12 for r in good.returns for x in r)  # always-left CartPole
