"""The evaluation protocol's failure paths (ldm/eval/protocol.py)."""

import numpy as np

import ldm.envs
from ldm.errors import EnvError
from ldm.eval.agents import Agent, PredictAgent
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
    def act(self, observations, live=None):
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


class _Counting:
    """An SB3-style policy: a fixed action, and how many observations it was asked about."""

    def __init__(self, action: int) -> None:
        self.action, self.asked = action, 0

    def predict(self, obs, deterministic=True):
        self.asked += len(obs)
        return np.full(len(obs), self.action, np.int64), None


ACROBOT_OBS = SpaceSpec("continuous", (6,), low=(-30.0,) * 6, high=(30.0,) * 6)
ACROBOT_ACT = SpaceSpec("discrete", (), "int64", n=3)


def _cartpole_and_acrobot(monkeypatch, cfg: EvalConfig) -> list[EnvRun]:
    """In-process CartPole (slots 0, 1) and Acrobot (slots 2, 3): a constant action drops the
    pole within a few steps, while Acrobot at rest runs to its 500-step limit."""
    real = ldm.envs.make_vec
    monkeypatch.setattr(
        ldm.envs,
        "make_vec",
        lambda env_id, n, **kw: real(env_id, n, backend="inprocess", workers=1),
    )
    specs = [
        ("classic-control/CartPole-v1", OBS, ACT),
        ("classic-control/Acrobot-v1", ACROBOT_OBS, ACROBOT_ACT),
    ]
    runs = []
    for k, (env_id, obs, act) in enumerate(specs):
        run = EnvRun(env_id, obs, act, rollout_seeds(env_id, cfg))
        run.slots = [2 * k, 2 * k + 1]
        runs.append(run)
    return runs


def test_per_env_policies_are_not_asked_once_their_env_is_done(monkeypatch):
    cfg = EvalConfig(rollouts=2, episodes=2, backend="inprocess")
    runs = _cartpole_and_acrobot(monkeypatch, cfg)
    policies = [_Counting(0), _Counting(1)]  # always left; Acrobot's "no torque"
    stats = run_protocol(runs, PredictAgent(policies, [0, 0, 1, 1]), cfg, progress=False)
    cartpole, acrobot = runs
    assert [len(r) for r in cartpole.returns] == [2, 2]
    assert all(9 <= x <= 12 for r in cartpole.returns for x in r)
    assert [r for rs in acrobot.returns for r in rs] == [-500.0] * 4
    assert stats.steps == acrobot.steps == 1000
    # each policy saw its env's two slots at every step its env stepped, and no more
    assert policies[0].asked == 2 * cartpole.steps < 60
    assert policies[1].asked == 2 * acrobot.steps


def test_the_ldm_session_drops_the_slots_of_finished_envs(monkeypatch):
    import torch

    from ldm.eval.agents import SessionAgent
    from ldm.model import LDMPolicy, preset

    torch.manual_seed(0)
    cfg = EvalConfig(rollouts=2, episodes=1, backend="inprocess")
    runs = _cartpole_and_acrobot(monkeypatch, cfg)
    agent = SessionAgent(
        LDMPolicy(preset("ldm-tiny", context=64)).eval(),
        [OBS, OBS, ACROBOT_OBS, ACROBOT_OBS],
        [ACT, ACT, ACROBOT_ACT, ACROBOT_ACT],
        cfg,
    )
    stats = run_protocol(runs, agent, cfg, progress=False)
    cartpole, acrobot = runs
    # an untrained policy drops the pole within ~100 steps; Acrobot runs to its 500-step limit
    assert cartpole.steps < 200 and acrobot.steps == stats.steps == agent.calls == 500
    assert [len(r) for r in cartpole.returns] == [1, 1]
    assert [len(r) for r in acrobot.returns] == [1, 1]
    assert [r[0] for r in acrobot.returns] == [-500.0, -500.0]
    assert agent.session.num_envs == 2 and agent.slots.tolist() == [2, 3]
