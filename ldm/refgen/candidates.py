"""The candidate pool (data in candidates.toml) and its compatibility rules.

The pool holds Stable-Baselines3 / SB3-Contrib algorithms (torch) and Stable-Baselines-Jax's
(`sbx`: the same API and VecEnv, JAX networks), trained, recorded, relabelled and ranked by
the same code. Compatibility is decided from the SpaceSpecs, never from env names:
value-based methods (DQN, QR-DQN) need discrete actions; SAC/TD3/DDPG/TQC/CrossQ need
continuous (Box) actions; sbx's algorithms take vector observations only; image observations
of at least 36x36 get SB3's CNN policy. A skipped candidate carries its reason.

Owns: `Candidate`, `Algorithm` and `ALGORITHMS` (name -> module, class, the action and
observation kinds, framework), the pool loader and `buffer_within_run` (a class's replay buffer sized to a run). Imports ldm.spaces and ldm.errors; must
not import stable_baselines3, sbx, torch or jax (the classes are named, imported by whoever
trains or loads them), ldm.envs or ldm.data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomllib

from ldm.errors import RefGenError, known_keys
from ldm.spaces import SpaceSpec

POOL_FILE = Path(__file__).with_name("candidates.toml")

#: action kinds of on-policy algorithms (and ARS's subset below)
_ANY_ACTION = ("discrete", "continuous", "multi_discrete", "multi_binary")
#: the numeric frameworks candidates train with (each job sets one compute thread for its
#: own: ldm/refgen/threads.py)
Framework = Literal["torch", "jax"]


@dataclass(frozen=True)
class Algorithm:
    """Where an algorithm's class lives and what it can train on."""

    module: str
    cls: str
    actions: tuple[str, ...]
    """The action kinds (SpaceSpec kinds) it supports."""
    observations: tuple[str, ...] = ()
    """The observation kinds it supports; empty = any (SB3 one-hot encodes discrete
    observations and scales images; Stable-Baselines-Jax does neither: vectors only)."""
    framework: Framework = "torch"


def _sbx(cls: str, actions: tuple[str, ...]) -> Algorithm:
    """A Stable-Baselines-Jax algorithm: SB3's API and VecEnv, JAX networks (jit-compiled)."""
    return Algorithm("sbx", cls, actions, ("continuous",), "jax")


#: algo name -> its class and what it supports; Stable-Baselines-Jax's as "sbx.<class>"
ALGORITHMS: dict[str, Algorithm] = {
    "PPO": Algorithm("stable_baselines3", "PPO", _ANY_ACTION),
    "A2C": Algorithm("stable_baselines3", "A2C", _ANY_ACTION),
    "DQN": Algorithm("stable_baselines3", "DQN", ("discrete",)),
    "SAC": Algorithm("stable_baselines3", "SAC", ("continuous",)),
    "TD3": Algorithm("stable_baselines3", "TD3", ("continuous",)),
    "DDPG": Algorithm("stable_baselines3", "DDPG", ("continuous",)),
    "QRDQN": Algorithm("sb3_contrib", "QRDQN", ("discrete",)),
    "TQC": Algorithm("sb3_contrib", "TQC", ("continuous",)),
    "TRPO": Algorithm("sb3_contrib", "TRPO", _ANY_ACTION),
    "ARS": Algorithm("sb3_contrib", "ARS", ("discrete", "continuous")),
    "sbx.SAC": _sbx("SAC", ("continuous",)),
    "sbx.TQC": _sbx("TQC", ("continuous",)),
    "sbx.TD3": _sbx("TD3", ("continuous",)),
    "sbx.CrossQ": _sbx("CrossQ", ("continuous",)),
    "sbx.PPO": _sbx("PPO", _ANY_ACTION),
    "sbx.DQN": _sbx("DQN", ("discrete",)),
}
#: algorithms whose policies train with SB3's default optimizer, Adam with its default
#: arguments: they get torch's fused Adam, the same update in one kernel (A2C's default is
#: RMSprop and QR-DQN's an Adam of its own eps, both set when no optimizer is named; ARS has
#: none; Stable-Baselines-Jax's train with optax)
ADAM_DEFAULT = {"PPO", "DQN", "SAC", "TD3", "DDPG", "TQC", "TRPO"}


def algorithm_class(algo: str) -> Any:
    """The class of an algorithm name (a key of ALGORITHMS), imported now: what trains a
    candidate and what loads a saved policy both take it from here."""
    import importlib

    spec = ALGORITHMS[algo]
    return getattr(importlib.import_module(spec.module), spec.cls)


@dataclass(frozen=True)
class Candidate:
    """One algorithm/configuration pair."""

    name: str
    """Unique name, e.g. "ppo-8env"."""
    algo: str
    """Algorithm name, a key of ALGORITHMS: an SB3 / SB3-Contrib class name ("SAC") or a
    Stable-Baselines-Jax one ("sbx.SAC")."""
    n_envs: int = 1
    """Parallel envs the algorithm trains on (each becomes one stream of the run)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters passed to the algorithm's constructor."""
    continuous_only: bool = False
    """Only for continuous actions (e.g. settings using gSDE)."""
    policies: tuple[str, ...] = ()
    """The SB3 policy kinds these settings are for (e.g. ("CnnPolicy",) for Atari-style
    settings, ("MlpPolicy",) for many-epoch settings that a CNN makes ~10x slower); empty =
    any. Decided from the observation space, like everything else here."""
    note: str = ""
    """Where the settings come from."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        """A candidate as the pool file or a job in jobs.json writes it."""
        known_keys(cls, d, f"candidate {d.get('name', '?')!r}", RefGenError)
        return cls(**{**d, "policies": tuple(d.get("policies", ()))})

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise RefGenError(
                f"candidate {self.name!r}: algo {self.algo!r} is not one of {sorted(ALGORITHMS)}"
            )
        if self.n_envs < 1:
            raise RefGenError(f"candidate {self.name!r}: n_envs must be >= 1")

    def algorithm_class(self) -> Any:
        return algorithm_class(self.algo)

    @property
    def framework(self) -> Framework:
        """The numeric framework the candidate trains with (torch or jax)."""
        return ALGORITHMS[self.algo].framework

    def constructor_kwargs(self) -> dict[str, Any]:
        """`kwargs` as the algorithm is built with them: where the policy keeps SB3's default
        Adam, torch's fused implementation of it (the same update rule; on this CPU the
        optimizer step of a small MLP costs a third of the Python-level one). Configurations
        that name their own optimizer or its arguments are left as written."""
        policy_kwargs = dict(self.kwargs.get("policy_kwargs", {}))
        if self.algo not in ADAM_DEFAULT or {"optimizer_class", "optimizer_kwargs"} & set(
            policy_kwargs
        ):
            return dict(self.kwargs)
        policy_kwargs["optimizer_kwargs"] = {"fused": True}
        return {**self.kwargs, "policy_kwargs": policy_kwargs}

    def compatible(self, obs: SpaceSpec, act: SpaceSpec) -> tuple[bool, str]:
        """(True, policy name) or (False, the reason it is skipped)."""
        spec = ALGORITHMS[self.algo]
        kinds = spec.actions
        if act.kind not in kinds:
            return (
                False,
                f"{self.algo} does not support {act.kind} actions (supports {', '.join(kinds)})",
            )
        if spec.observations and obs.kind not in spec.observations:
            return (
                False,
                f"{self.algo} does not support {obs.kind} observations (supports "
                f"{', '.join(spec.observations)})",
            )
        if act.kind == "continuous" and not act.is_bounded.all():
            # SB3 asserts it when the model is built: the job would fail, not train
            return False, f"{self.algo} needs finite action bounds; the env's are unbounded"
        if self.continuous_only and act.kind != "continuous":
            return False, f"{self.name} is for continuous actions only"
        policy = "CnnPolicy" if obs.kind == "image" and min(obs.shape[:2]) >= 36 else "MlpPolicy"
        if self.policies and policy not in self.policies:
            return False, f"{self.name} is for {' / '.join(self.policies)} only, not {policy}"
        return True, policy


def load_pool(path: str | Path | None = None, names: list[str] | None = None) -> list[Candidate]:
    """Candidates of a pool file (default: ldm's own), optionally only the named ones."""
    path = Path(path or POOL_FILE)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RefGenError(f"candidate pool {path}: {e}") from None
    pool = []
    for i, entry in enumerate(data.get("candidate", [])):
        try:
            pool.append(Candidate.from_dict(entry))
        except TypeError as e:
            raise RefGenError(f"{path}: candidate #{i + 1}: {e}") from None
    by_name = {c.name: c for c in pool}
    if len(by_name) != len(pool):
        raise RefGenError(f"{path}: candidate names must be unique")
    if names is None:
        return pool
    missing = [n for n in names if n not in by_name]
    if missing:
        raise RefGenError(f"unknown candidates {missing}; the pool {path} has {sorted(by_name)}")
    return [by_name[n] for n in names]


def buffer_within_run(algo: Any, kwargs: dict[str, Any], limit: int) -> dict[str, Any]:
    """An off-policy algorithm's replay buffer no larger than the run's own transitions: the
    run never fills more, and SB3 sizes it up front (SAC's default 1M steps of 64x64x3
    frames is 24.6 GB, over this machine's memory, for a run capped at 300k). `algo`: the
    class, read by its signature (nothing imported here)."""
    import inspect

    param = inspect.signature(algo.__init__).parameters.get("buffer_size")
    if param is None:
        return kwargs
    return {**kwargs, "buffer_size": min(int(kwargs.get("buffer_size", param.default)), limit)}
