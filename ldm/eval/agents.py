"""The agents the protocol drives: who chooses the actions of a batch of slots.

Owns `Agent` (act on every slot, record the outcome, forget some slots' context),
`SessionAgent` (an LDMPolicy's acting session: one batched model call per step) and
`PredictAgent` (SB3-style `predict` policies, one per env: the references) and `RandomAgent`
(uniform random actions under the action mask: the random scores). Imports numpy, the
protocol's config and the tokenizer's action layout; must not import torch or ldm.model (a
policy is duck-typed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldm.eval.config import EvalConfig
from ldm.spaces import MAX_ACT_DIMS, SpaceSpec
from ldm.tokenizer import act_layout, decode_actions


class Agent:
    """What the protocol drives: a batch of slots acting together."""

    def act(self, observations: list[Any], live: np.ndarray | None = None) -> list[Any]:
        """Actions for every slot; `live` (bool per slot) marks the slots whose env still
        steps: the others' actions are never used, and an agent may leave them None."""
        raise NotImplementedError

    def record(self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> None:
        pass

    def reset(self, slots: list[int]) -> None:
        pass


class SessionAgent(Agent):
    """An LDMPolicy acting session over the live slots (one model call per step). Slots whose
    env is done leave the session's batch (`ActingSession.keep`): the long episodes of the
    last envs cost what those envs cost, not what all slots cost."""

    def __init__(
        self, policy: Any, obs_specs: list[SpaceSpec], act_specs: list[SpaceSpec], cfg: EvalConfig
    ) -> None:
        self.session = policy.start_session(obs_specs, act_specs)
        self.cfg = cfg
        self.calls = 0
        self.slots = np.arange(len(obs_specs))  # the session's rows, by slot

    def act(self, observations: list[Any], live: np.ndarray | None = None) -> list[Any]:
        """Actions of the session's slots (None for the slots that left it)."""
        rows = np.flatnonzero(live[self.slots]) if live is not None else self.slots
        if 0 < len(rows) < len(self.slots):  # some slots' envs are done: they leave
            self.session.keep(rows)
            self.slots = self.slots[rows]
        self.calls += 1
        actions = self.session.act(
            [observations[s] for s in self.slots],
            deterministic=self.cfg.deterministic,
            temperature=self.cfg.temperature,
            decoding=self.cfg.decoding,
        )
        out: list[Any] = [None] * len(observations)
        for s, a in zip(self.slots, actions):
            out[s] = a
        return out

    def record(self, rewards, terminated, truncated) -> None:
        self.session.record(rewards[self.slots], terminated[self.slots], truncated[self.slots])

    def reset(self, slots: list[int]) -> None:
        rows = np.flatnonzero(np.isin(self.slots, slots))
        if rows.size:
            self.session.reset(rows)


class PredictAgent(Agent):
    """Policies with SB3's `predict` signature, one per env (e.g. the reference policies)."""

    def __init__(
        self, policies: list[Any], slot_env: list[int], deterministic: bool = True
    ) -> None:
        self.policies, self.slot_env, self.deterministic = (
            policies,
            np.asarray(slot_env),
            deterministic,
        )
        self.calls = 0

    def act(self, observations: list[Any], live: np.ndarray | None = None) -> list[Any]:
        """One `predict` per env that has a live slot (an env whose episodes are done costs
        nothing while the long ones finish)."""
        out: list[Any] = [None] * len(observations)
        for e, policy in enumerate(self.policies):
            idx = np.flatnonzero(self.slot_env == e)
            if policy is None or not idx.size or (live is not None and not live[idx].any()):
                continue
            self.calls += 1
            actions, _ = policy.predict(
                np.stack([observations[i] for i in idx]), deterministic=self.deterministic
            )
            for i, a in zip(idx, actions):
                out[i] = a
        return out


class RandomAgent(Agent):
    """Uniform random actions under the action mask: every valid bin of every action dim
    equally likely (the model's own action space: a categorical action uniform over its
    categories, a bounded continuous one uniform over its bins' centres), one seeded generator
    for all slots."""

    def __init__(self, act_specs: list[SpaceSpec], seed: int) -> None:
        self.specs = act_specs
        self.valid = [act_layout(spec)[1][: spec.flat_dim].astype(np.int64) for spec in act_specs]
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def act(self, observations: list[Any], live: np.ndarray | None = None) -> list[Any]:
        """One random action per live slot (None for the others)."""
        out: list[Any] = [None] * len(observations)
        for s, (spec, n) in enumerate(zip(self.specs, self.valid)):
            if live is not None and not live[s]:
                continue
            bins = np.zeros(MAX_ACT_DIMS, dtype=np.int64)
            bins[: len(n)] = self.rng.integers(0, n)
            out[s] = decode_actions(spec, bins)
        self.calls += 1
        return out
