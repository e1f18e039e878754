"""LDMAgent (ldm/model/agent.py): acting from gym envs and spaces as SB3 and JAT users do, the
context kept across episodes as the protocol keeps it, wrong shapes a clear error."""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch

from ldm.errors import ModelError
from ldm.model import LDMPolicy, preset


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return LDMPolicy(preset("ldm-tiny", context=64)).eval()


def _session_actions(policy, env, obs, outcomes):
    """What the protocol's session does with the same steps: act, record the outcome, the
    context never emptied between episodes."""
    session = policy.start_session([env.observation_space], [env.action_space])
    acted = []
    for t, o in enumerate(obs):
        if t:
            r, term, trunc = outcomes[t - 1]
            session.record(np.array([r]), np.array([term]), np.array([trunc]))
        acted.append(int(session.act([o])[0]))
    return acted


def _cartpole_steps(agent_step, seed=0, steps=40):
    """A plain Gymnasium loop over CartPole; `agent_step(obs, last_outcome)` -> action."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    seen, outcomes, last = [], [], None
    for _ in range(steps):
        seen.append(obs)
        action = agent_step(obs, last)
        assert env.action_space.contains(action)
        obs, r, term, trunc, _ = env.step(action)
        last = (float(r), bool(term), bool(trunc))
        outcomes.append(last)
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return seen, outcomes


def test_predict_in_a_plain_sb3_loop_acts_every_step_and_keeps_the_context(policy):
    env = gym.make("CartPole-v1")
    agent = policy.agent(env)  # from the env: no SpaceSpecs by hand
    actions = []

    def step(obs, last):
        action, state = agent.predict(obs)  # no episode_start: the second call must work too
        assert state is None
        actions.append(int(action))
        return action

    obs, outcomes = _cartpole_steps(step)
    assert any(term for _, term, _ in outcomes)  # an episode ended inside the loop
    # SB3 tells predict nothing: rewards 0, no done flags, one context all along
    blind = [(0.0, False, False)] * len(outcomes)
    assert actions == _session_actions(policy, env, obs, blind)


def test_predict_with_record_sees_rewards_and_episode_ends(policy):
    env = gym.make("CartPole-v1")
    agent = policy.agent(env.observation_space, env.action_space)  # or the two spaces
    actions = []

    def step(obs, last):
        if last is not None:
            agent.record(*last)
        actions.append(int(agent.predict(obs)[0]))
        return actions[-1]

    obs, outcomes = _cartpole_steps(step, seed=1)
    assert actions == _session_actions(policy, env, obs, outcomes)


def test_get_next_action_is_the_protocol_session_jat_style(policy):
    env = gym.make("CartPole-v1")
    agent = policy.agent(env)
    actions = []

    def step(obs, last):
        reward, term, trunc = last if last is not None else (None, False, False)
        actions.append(int(agent.get_next_action(obs, reward, term, trunc)))
        return actions[-1]

    obs, outcomes = _cartpole_steps(step, seed=2)
    assert actions == _session_actions(policy, env, obs, outcomes)
    # reset() empties the context: the next action is the first of a new rollout
    agent.reset()
    first = int(agent.get_next_action(obs[0]))
    assert first == _session_actions(policy, env, obs[:1], [])[0]


def test_sb3_evaluate_policy_and_a_vector_env(policy):
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(gym.make("CartPole-v1"))
    returns, lengths = evaluate_policy(
        policy.agent(env), env, n_eval_episodes=2, return_episode_rewards=True
    )
    assert len(returns) == 2 and returns == [float(n) for n in lengths]  # +1 a step

    venv = gym.make_vec("CartPole-v1", 3)
    agent = policy.agent(venv)  # single_observation_space / single_action_space
    obs, _ = venv.reset(seed=0)
    for _ in range(3):
        actions, _ = agent.predict(obs)
        assert actions.shape == (3,)
        obs, *_ = venv.step(actions)
    with pytest.raises(ModelError, match="acts for 3 envs, got 2 observations; call agent.reset"):
        agent.predict(obs[:2])
    agent.reset()
    assert agent.predict(obs[:2])[0].shape == (2,)
    venv.close()


def test_wrong_observation_shapes_are_clear_errors(policy):
    env = gym.make("CartPole-v1")
    agent = policy.agent(env)
    for bad in (np.zeros(7), np.zeros((2, 3)), np.zeros((1, 2, 4))):
        with pytest.raises(ModelError, match=re.escape(f"shape {bad.shape} for the observation")):
            agent.predict(bad)
    # the session itself refuses them too, whatever the batch
    session = policy.start_session([env.observation_space] * 2, [env.action_space] * 2)
    with pytest.raises(ModelError, match=r"observation 1 has shape \(7,\).*takes shape \(4,\)"):
        session.act([np.zeros(4), np.zeros(7)])
    with pytest.raises(ModelError, match=r"observation 0 has shape \(2, 4\)"):
        session.act([np.zeros((2, 4)), np.zeros(4)])
    # a space outside the paper's limits or of an unsupported type, named at creation
    with pytest.raises(ModelError, match="over the limit of 128"):
        policy.agent(gym.spaces.Box(-1, 1, (200,)), env.action_space)
    with pytest.raises(Exception, match="Dict"):
        policy.agent(gym.spaces.Dict({"a": env.observation_space}), env.action_space)
    with pytest.raises(ModelError, match="record\\(\\) follows an action"):
        policy.agent(env).record(1.0, False, False)
