"""One env tried by `ldm envs discover`: make, spaces within the paper's limits, reset, steps.

An env that makes, resets and steps within the limits is *listed*. Its checks are not the
trial's: discovery then runs `ldm envs check`'s own (ldm/envs/library/check.py) on the spec it writes
and records that outcome beside it (`EnvTrial.problems`, written to the `<name>.spaces.json`
sidecar), so `ldm envs list` can flag an env that fails its checks. Also owns `outside` (why an
observation is not in its space), which the check uses. Imports gymnasium (client side) and
ldm's spaces; no environment library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import singledispatch
from typing import Any

import gymnasium as gym
import numpy as np

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.proxy import space_from_desc
from ldm.envs.transport import messages
from ldm.envs.transport.connection import Connection
from ldm.errors import EnvError, LDMError, SpaceError
from ldm.spaces import SpaceSpec, check_limits, from_gym_space


@dataclass(frozen=True)
class EnvTrial:
    """What trying one env found: its SpaceSpecs (as dicts) and the problems of its checks
    (`ldm envs check`'s, once discovery ran them; None before)."""

    env_id: str
    observation: dict[str, Any]
    action: dict[str, Any]
    problems: list[str] | None = None
    family: str = ""
    """The env's class (`module:Qualname` of its entry point; "" when not known)."""

    @property
    def ok(self) -> bool:
        """Checked, and its checks passed."""
        return self.problems == []

    def to_sidecar(self) -> dict[str, Any]:
        """The sidecar entry: spaces, the check result (once checked) and (when known) the
        env's family."""
        return {
            "observation": self.observation,
            "action": self.action,
            **(
                {}
                if self.problems is None
                else {"check": {"ok": self.ok, "problems": self.problems}}
            ),
            **({"family": self.family} if self.family else {}),
        }

    @classmethod
    def from_sidecar(cls, env_id: str, entry: dict[str, Any]) -> EnvTrial:
        """A sidecar entry read back (what an earlier discovery recorded)."""
        check = entry.get("check")
        return cls(
            env_id,
            entry.get("observation", {}),
            entry.get("action", {}),
            None if check is None else list(check.get("problems", [])),
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
                f"over its time budget of {self.seconds:g} s (make, a seeded rollout); "
                "a slower env may pass with `ldm envs discover --timeout`"
            )


def try_env(conn: Connection, spec: LibrarySpec, rid: str, timeout: float, steps: int) -> EnvTrial:
    """Make, limit-check, reset and step one env, all within `timeout` seconds; raises on
    failure (its checks are `ldm envs check`'s, run afterwards)."""
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
    _close(conn, handle, timeout)
    return trial


def _close(conn: Connection, handle: list[int], timeout: float) -> None:
    """Close the env; a library whose close() raises still lists it (the check's close check
    reports it)."""
    try:
        conn.call(messages.close(handle), timeout)
    except EnvError:
        pass


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
    _rollout(conn, handle, [np.asarray(act_space.sample()) for _ in range(steps)], budget)
    return EnvTrial(rid, obs_spec.to_dict(), act_spec.to_dict())


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
