"""One env tried by `ldm envs discover`: make, spaces within the paper's limits, reset, steps,
and the env's own checks (observations inside the declared space, finite, the same seed
reproducing the same episode).

An env that makes, resets and steps within the limits is *listed*; the checks' outcome is
recorded beside it (`EnvTrial.problems`, written to the `<name>.spaces.json` sidecar) so
`ldm envs list` can flag an env that fails its own checks. Imports gymnasium (client side) and
ldm's spaces; no environment library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

import gymnasium as gym
import numpy as np

from ldm.envs import messages
from ldm.envs.catalog import LibrarySpec
from ldm.envs.connection import Connection
from ldm.envs.proxy import space_from_desc
from ldm.errors import EnvError, LDMError, SpaceError
from ldm.spaces import SpaceSpec, check_limits, from_gym_space


@dataclass(frozen=True)
class EnvTrial:
    """What trying one env found: its SpaceSpecs (as dicts) and the problems of its checks."""

    env_id: str
    observation: dict[str, Any]
    action: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    family: str = ""
    """The env's class (`module:Qualname` of its entry point; "" when not known)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_sidecar(self) -> dict[str, Any]:
        """The sidecar entry: spaces, the check result and (when known) the env's family."""
        return {
            "observation": self.observation,
            "action": self.action,
            "check": {"ok": self.ok, "problems": self.problems},
            **({"family": self.family} if self.family else {}),
        }

    @classmethod
    def from_sidecar(cls, env_id: str, entry: dict[str, Any]) -> EnvTrial:
        """A sidecar entry read back (what an earlier discovery recorded)."""
        check = entry.get("check") or {}
        return cls(
            env_id,
            entry.get("observation", {}),
            entry.get("action", {}),
            list(check.get("problems", [])),
            entry.get("family", ""),
        )


@singledispatch
def outside(space: gym.Space, obs: Any) -> str | None:
    """Why `obs` is not in `space` (None when it is)."""
    try:
        return None if space.contains(obs) else f"{obs!r:.80} is not in {space}"
    except Exception as e:
        return f"{type(e).__name__} while testing {obs!r:.80} against {space}: {e}"


@outside.register(gym.spaces.Box)
def _outside_box(space: gym.spaces.Box, obs: Any) -> str | None:
    a = np.asarray(obs)
    if a.shape != space.shape:
        return f"shape {a.shape} differs from the declared {space.shape}"
    af = a.astype(np.float64)
    if np.isnan(af).any():
        return "holds NaN"
    low = np.broadcast_to(space.low, a.shape)
    high = np.broadcast_to(space.high, a.shape)
    bad = np.argwhere((af < low) | (af > high))
    if len(bad):
        i = tuple(int(k) for k in bad[0])
        return (
            f"value {af[i]:.4g} at index {list(i)} is outside the declared bounds "
            f"[{low[i]:.4g}, {high[i]:.4g}] ({len(bad)} values outside)"
        )
    return None


@outside.register(gym.spaces.Discrete)
def _outside_discrete(space: gym.spaces.Discrete, obs: Any) -> str | None:
    v = int(np.asarray(obs).reshape(-1)[0])
    lo = int(space.start)
    return None if lo <= v < lo + int(space.n) else f"{v} is outside [{lo}, {lo + int(space.n)})"


class Budget:
    """One env's time budget: every call of its trial gets what is left of `seconds`."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def __call__(self) -> float:
        """Seconds left for the next call; raises once none are."""
        self.check()
        return self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise the budget's error once it is spent (a call it cut short fails this way)."""
        if time.monotonic() >= self.deadline:
            raise EnvError(
                f"over its time budget of {self.seconds:g} s (make, two seeded rollouts); "
                "a slower env may pass with `ldm envs discover --timeout`"
            )


def try_env(conn: Connection, spec: LibrarySpec, rid: str, timeout: float, steps: int) -> EnvTrial:
    """Make, limit-check, reset and step one env twice under one seed, all within `timeout`
    seconds; raises on failure."""
    budget = Budget(timeout)
    try:
        made = conn.call(messages.make(rid, spec.kwargs_for(rid), 1), budget())
    except LDMError:
        budget.check()  # a call cut short by the budget says so
        raise
    handle = made["handles"]
    try:
        trial = _trial(conn, made, spec, rid, budget, steps)
    except BaseException as e:
        if conn.alive:
            _close(conn, handle, timeout)
        if isinstance(e, LDMError):
            budget.check()
        raise
    why = _close(conn, handle, timeout)
    return (
        trial if why is None else EnvTrial(**{**trial.__dict__, "problems": [*trial.problems, why]})
    )


def _close(conn: Connection, handle: list[int], timeout: float) -> str | None:
    """Close the env; a library whose close() raises is a finding, not a failed env."""
    try:
        conn.call(messages.close(handle), timeout)
    except EnvError as e:
        return f"close() raised: {str(e).splitlines()[0][:200]}"
    return None


def _trial(
    conn: Connection, made: dict, spec: LibrarySpec, rid: str, budget: Budget, steps: int
) -> EnvTrial:
    handle = made["handles"]
    obs_space = space_from_desc(made["spaces"]["observation"])
    act_space = space_from_desc(made["spaces"]["action"])
    obs_spec, act_spec = _spec(obs_space, "observation"), _spec(act_space, "action")
    check_limits(obs_spec, "observation", f"{spec.name}/{rid}")
    check_limits(act_spec, "action", f"{spec.name}/{rid}")
    act_space.seed(0)
    actions = [np.asarray(act_space.sample()) for _ in range(steps)]
    first = _rollout(conn, handle, actions, budget)
    second = _rollout(conn, handle, actions, budget)
    problems = []
    for t, obs in enumerate(first):
        why = outside(obs_space, obs)
        if why:
            problems.append(f"observation {t} of a seeded episode: {why}")
            break
    if not all(_same(a, b) for a, b in zip(first, second)):
        problems.append("reset(seed=0) twice with the same actions gave different observations")
    return EnvTrial(rid, obs_spec.to_dict(), act_spec.to_dict(), problems)


def _spec(space: gym.Space, role: str) -> SpaceSpec:
    try:
        return from_gym_space(space)
    except SpaceError as e:
        raise SpaceError(f"{role} {e}") from None


def _rollout(conn: Connection, handle: list[int], actions: list, budget: Budget) -> list:
    reply = conn.call(messages.reset(handle, [0]), budget())
    out = [reply["obs"][0]]
    for a in actions:
        reply = conn.call(messages.step(handle, [a], autoreset=True), budget())
        out.append(reply["obs"][0])
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")
