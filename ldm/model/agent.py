"""LDMAgent: act in a Gymnasium env (or a vector of copies of one) the way RL code expects.

    agent = LDMPolicy.from_pretrained("runs/quickstart/train/final").agent(env)
    action, _ = agent.predict(obs)                       # Stable-Baselines3's signature
    action = agent.get_next_action(obs, reward)           # JAT's: the last action's reward

The agent is made from a gym env, a vector env, or two gym spaces (or SpaceSpecs); it keeps
one `ActingSession` whose context runs across episodes, as the evaluation protocol's does:
an episode's end enters the context as a done flag, it does not empty it (`reset()` does:
a new rollout). `predict` can be called in a plain SB3 loop: SB3 passes no rewards, so an
outcome not given by `record()` enters the context as reward 0 and done where SB3 says
`episode_start`. One observation of the env's shape gives one action; a batch of N (one per
env of a vector env) gives N; any other shape is a ModelError naming both.

Imports numpy, ldm.spaces and ldm.errors; the policy is duck-typed (`start_session`), so
this module imports neither torch nor ldm.envs, ldm.data or ldm.eval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldm import spaces
from ldm.errors import ModelError, SpaceError
from ldm.tokens import ActionDecoding


def as_spec(space: Any, role: str) -> spaces.SpaceSpec:
    """A SpaceSpec from a gymnasium space (or a SpaceSpec), within the paper's limits."""
    spec = spaces.as_spec(space)
    try:
        spaces.check_limits(spec, role, "the agent's env")  # type: ignore[arg-type]
    except SpaceError as e:
        raise ModelError(str(e)) from None
    return spec


def env_spaces(env: Any) -> tuple[Any, Any]:
    """(observation, action) space of one env of `env`: a gymnasium Env, a gymnasium
    VectorEnv (its `single_*` spaces) or an SB3 VecEnv (whose spaces are per env)."""
    obs = getattr(env, "single_observation_space", None)
    act = getattr(env, "single_action_space", None)
    if obs is None or act is None:
        obs, act = getattr(env, "observation_space", None), getattr(env, "action_space", None)
    if obs is None or act is None:
        raise ModelError(
            f"{type(env).__name__} has no observation_space/action_space: pass a gymnasium env, "
            "a vector env, or the two spaces (policy.agent(observation_space, action_space))"
        )
    return obs, act


class LDMAgent:
    """One env's (or one vector env's) acting loop over an LDMPolicy (see module docstring)."""

    def __init__(
        self,
        policy: Any,
        observation_space: Any,
        action_space: Any,
        decoding: ActionDecoding = "median",
        temperature: float = 1.0,
    ) -> None:
        self.policy = policy
        self.obs_spec = as_spec(observation_space, "observation")
        self.act_spec = as_spec(action_space, "action")
        self.decoding, self.temperature = decoding, temperature
        self.session: Any = None
        self._pending = False  # actions given whose outcome is not recorded yet

    # -- the three ways to act -------------------------------------------------------------
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        """Stable-Baselines3's `predict`: (action(s), state). Each call after the first takes
        the previous actions' outcome from `record()` if it was called, else as reward 0 and
        done where `episode_start` is True (SB3's `evaluate_policy` passes the dones)."""
        if self._pending:
            n = self.session.num_envs
            starts = np.zeros(n, bool) if episode_start is None else episode_start
            self.record(np.zeros(n), starts, np.zeros(n, bool))
        return self._act(observation, deterministic), state

    def get_next_action(
        self,
        observation: Any,
        reward: Any = None,
        terminated: Any = False,
        truncated: Any = False,
        deterministic: bool = True,
    ) -> Any:
        """JAT's way: the action(s) for `observation`, given the reward (and end) of the
        previous action; `reward` None at the first step (then 0 if an action was given)."""
        if self._pending:
            n = self.session.num_envs
            self.record(
                np.broadcast_to(0.0 if reward is None else reward, n),
                np.broadcast_to(terminated, n),
                np.broadcast_to(truncated, n),
            )
        return self._act(observation, deterministic)

    def record(self, reward: Any, terminated: Any, truncated: Any) -> None:
        """The outcome of the last actions (reward, and whether the episode ended): what
        `predict` cannot be told. Optional: a `predict` without it sees reward 0."""
        if not self._pending:
            raise ModelError("record() follows an action: call predict() or act first")
        n = self.session.num_envs
        self.session.record(
            np.broadcast_to(np.asarray(reward, np.float64), n),
            np.broadcast_to(np.asarray(terminated, bool), n),
            np.broadcast_to(np.asarray(truncated, bool), n),
        )
        self._pending = False

    def reset(self) -> None:
        """Empty the context: the next action starts a new rollout (also for another number
        of envs)."""
        self.session, self._pending = None, False

    # -- the step ----------------------------------------------------------------------------
    def _act(self, observation: Any, deterministic: bool) -> Any:
        obs, single = self._batch(observation)
        if self.session is None:
            self.session = self.policy.start_session(
                [self.obs_spec] * len(obs), [self.act_spec] * len(obs)
            )
        elif len(obs) != self.session.num_envs:
            raise ModelError(
                f"the agent acts for {self.session.num_envs} envs, got {len(obs)} observations; "
                "call agent.reset() to start a new rollout with another number of envs"
            )
        actions = self.session.act(
            list(obs),
            deterministic=deterministic,
            temperature=self.temperature,
            decoding=self.decoding,
        )
        self._pending = True
        return actions[0] if single else np.stack(actions)

    def _batch(self, observation: Any) -> tuple[np.ndarray, bool]:
        """(N, *shape) observations and whether one observation (not a batch) was given."""
        obs = np.asarray(observation)
        shape = self.obs_spec.value_shape
        if obs.shape == shape:
            return obs[None], True
        if obs.ndim == len(shape) + 1 and obs.shape[1:] == shape and len(obs):
            return obs, False
        batch = "(" + ", ".join(["N", *map(str, shape)]) + ("," if not shape else "") + ")"
        raise ModelError(
            f"observation of shape {obs.shape} for the observation space "
            f"{self.obs_spec.describe()}: give one observation of shape {shape} or a batch "
            f"of shape {batch}, one per env"
        )
