"""`ldm envs check`: Gymnasium's `check_env` plus ldm's own checks, through the proxy.

ldm's checks: the spaces convert to SpaceSpecs within the paper's limits, reset/step return
observations inside the observation space, and the same seed reproduces the same episode.

Owns: `CheckResult` and the checks. Imports gymnasium's checker and the hub (`ldm.envs.make`)
lazily; must not import an environment library (the env runs in its worker), torch or any
later part (data, refgen, model, ...).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

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


def _rollout(env, seed: int, steps: int) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [np.asarray(obs, dtype=np.float64).ravel() if not isinstance(obs, dict) else np.zeros(1)]
    for _ in range(steps):
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        out.append(
            np.asarray(obs, dtype=np.float64).ravel() if not isinstance(obs, dict) else np.zeros(1)
        )
        if term or trunc:
            obs, _ = env.reset()
    return out


def check(
    env_id: str,
    backend: str = "process",
    sandbox: bool = False,
    steps: int = 20,
    timeout: float = 60.0,
) -> CheckResult:
    """Check one env; never raises for a failing env, reports it in the result.

    `timeout`: seconds the worker may take per call, its library's first import included.
    """
    from gymnasium.utils.env_checker import check_env

    from ldm.envs import make

    result = CheckResult(env_id, ok=True)
    try:
        env = make(env_id, backend=backend, sandbox=sandbox, timeout=timeout)
    except LDMError as e:
        return CheckResult(env_id, False, [f"make failed: {e}"])
    try:
        obs_spec, act_spec = from_gym_space(env.observation_space), from_gym_space(env.action_space)
        result.observation, result.action = obs_spec.describe(), act_spec.describe()
        check_limits(obs_spec, "observation", env_id)
        check_limits(act_spec, "action", env_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env, skip_render_check=True)
        a, b = _rollout(env, 123, steps), _rollout(env, 123, steps)
        if len(a) != len(b) or any(not np.array_equal(x, y) for x, y in zip(a, b)):
            result.problems.append("the same seed did not reproduce the same observations")
        for o in a:
            if not np.all(np.isfinite(o)):
                result.problems.append("an observation holds NaN or inf")
                break
    except Exception as e:  # any failure of the env is a finding, not a crash of the checker
        result.problems.append(f"{type(e).__name__}: {e}")
    finally:
        env.close()
    result.ok = not result.problems
    return result
