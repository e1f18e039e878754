"""`ldm envs check`: Gymnasium's `check_env` plus ldm's own checks, through the proxy.

ldm's checks: the spaces convert to SpaceSpecs within the paper's limits, reset/step return
observations inside the observation space, and the same seed reproduces the same episode and
the episode an unseeded reset starts after it (a rollout's later episodes).

The check runs on a library spec (`check_spec`), catalogued or not: `ldm envs check` checks the
catalog's, `ldm envs discover` records this check of the spec it writes.

Owns: `CheckResult` and the checks. Imports gymnasium's checker and the hub (the proxy
lazily); must not import an environment library (the env runs in its worker), torch or any
later part (data, refgen, model, ...).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from ldm.envs.library.catalog import LibrarySpec
from ldm.errors import LDMError
from ldm.spaces import check_limits, from_gym_space


@dataclass
class CheckResult:
    """Outcome of checking one env."""

    env_id: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    observation: str = ""
    action: str = ""
    spaces: dict[str, dict] = field(default_factory=dict)
    """The SpaceSpecs as the catalog records them (`observation`, `action`: `to_dict()`), as
    the env made with its declared wrappers has them; empty when the env did not make."""


def _flat(obs) -> np.ndarray:
    return np.asarray(obs, dtype=np.float64).ravel() if not isinstance(obs, dict) else np.zeros(1)


def _rollout(env, seed: int, steps: int) -> tuple[list[np.ndarray], list[np.ndarray], str | None]:
    """Observations of `steps` seeded random steps, then of an unseeded reset and a few steps
    after it (how a rollout's second episode starts: it must follow from the first's seed),
    and the first observation of the seeded steps outside the declared space (None if none)."""
    from ldm.envs.library.trial import outside

    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    first, escape = [_flat(obs)], None
    for t in range(steps + 1):
        if escape is None and (why := outside(env.observation_space, obs)):
            escape = f"observation {t} of a seeded episode: {why}"
        if t == steps:
            break
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        first.append(_flat(obs))
        if term or trunc:
            obs, _ = env.reset()
    obs, _ = env.reset()
    after = [_flat(obs)]
    for _ in range(max(1, steps // 4)):
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        after.append(_flat(obs))
        if term or trunc:
            break
    return first, after, escape


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))


def rollout_problems(env, steps: int = 20, seed: int = 123) -> list[str]:
    """Two rollouts from the same seed, each followed by an unseeded reset: what differs between
    them, the first observation outside the declared space (as discovery's trial checks it),
    and observations that are not finite."""
    (a, a_after, escape), (b, b_after, _) = _rollout(env, seed, steps), _rollout(env, seed, steps)
    problems = [escape] if escape else []
    if not _same(a, b):
        problems.append("the same seed did not reproduce the same observations")
    elif not _same(a_after, b_after):
        problems.append(
            "an unseeded reset after the same seed did not reproduce the same observations "
            "(reset draws fresh entropy; the catalog's `derive_reset_seeds` wrapper fixes it)"
        )
    if not all(np.all(np.isfinite(o)) for o in a + a_after):
        problems.append("an observation holds NaN or inf")
    return problems


def check(
    env_id: str,
    backend: str = "process",
    sandbox: bool = False,
    steps: int = 20,
    timeout: float = 60.0,
) -> CheckResult:
    """Check one catalogued env (`check_spec` on its library's spec); never raises for a
    failing env, reports it in the result."""
    from ldm.envs.library.registry import resolve_env_id

    try:
        spec, rid = resolve_env_id(env_id)
    except LDMError as e:
        return CheckResult(env_id, False, [f"make failed: {e}"])
    return check_spec(spec, rid, backend, sandbox, steps, timeout)


def check_spec(
    spec: LibrarySpec,
    rid: str,
    backend: str = "process",
    sandbox: bool = False,
    steps: int = 20,
    timeout: float = 60.0,
) -> CheckResult:
    """Check env `rid` of a library as `spec` makes it (its wrappers, kwargs and venv), whether
    or not the spec is in the catalog yet: `ldm envs check` and the check `ldm envs discover`
    records are this one. Never raises for a failing env, reports it in the result.

    `timeout`: seconds the worker may take per call, its library's first import included.
    """
    from gymnasium.utils.env_checker import check_env

    from ldm.envs.proxy import ProxyEnv

    env_id = f"{spec.name}/{rid}"
    result = CheckResult(env_id, ok=True)
    try:
        env = ProxyEnv(spec, rid, backend=backend, sandbox=sandbox, timeout=timeout)
    except LDMError as e:
        return CheckResult(env_id, False, [f"make failed: {e}"])
    # check_env remakes the env from `env.spec` (its close check): from this spec, not from
    # the catalog's entry of the same name (absent, or older, while discovery checks)
    env.spec = _remake_spec(env.spec, spec, rid, backend, sandbox, timeout)
    try:
        obs_spec, act_spec = from_gym_space(env.observation_space), from_gym_space(env.action_space)
        result.observation, result.action = obs_spec.describe(), act_spec.describe()
        result.spaces = {"observation": obs_spec.to_dict(), "action": act_spec.to_dict()}
        check_limits(obs_spec, "observation", env_id)
        check_limits(act_spec, "action", env_id)
        # the seeded rollouts first: the first reset of a fresh instance must reproduce too
        # (an env whose construction leaves state only its later resets overwrite fails here)
        result.problems += rollout_problems(env, steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env, skip_render_check=True)
    except Exception as e:  # any failure of the env is a finding, not a crash of the checker
        result.problems.append(f"{type(e).__name__}: {e}")
    finally:
        env.close()
    result.ok = not result.problems
    return result


def _remake_spec(registered, spec: LibrarySpec, rid: str, backend: str, sandbox: bool, timeout):
    """The env's Gymnasium EnvSpec with an entry point that makes it from `spec` itself."""
    if registered is None:
        return None
    from functools import partial

    from ldm.envs.proxy import ProxyEnv

    make = partial(ProxyEnv, spec, rid, backend=backend, sandbox=sandbox, timeout=timeout)
    return replace(registered, entry_point=make, kwargs={})
