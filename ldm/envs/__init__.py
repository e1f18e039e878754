"""Environment hub: many Gym/Gymnasium libraries, each isolated, behind one Gymnasium API.

    env = ldm.envs.make("classic-control/CartPole-v1")            # a gymnasium.Env
    venv = ldm.envs.make_vec("classic-control/CartPole-v1", 8)    # a gymnasium VectorEnv
    sb3 = ldm.envs.sb3_vec_env("classic-control/CartPole-v1", 8)  # a Stable-Baselines3 VecEnv

Backends: "process" (default; the library's own venv), "inprocess", "ray", "docker".
Importing this package pulls in neither torch nor any environment library.

The hub by what each part is (docs/architecture.md, "Who may import whom"): this folder is
the front door (these functions, proxy.py, vector.py, sb3.py, gym_registry.py, gym_spec.py,
cli.py); transport/ how a client reaches a worker and steps its envs; library/ what ldm
knows of each library (catalog, registry, venvs, discovery, checks); worker/ what runs in
each library's venv. Imports the library side's registry (the proxies lazily); the
transport and the library side's catalog/registry/venvs never import this package.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

from ldm.envs.library.registry import EnvInfo, catalog_spaces, list_envs, resolve_env_id
from ldm.spaces import SpaceSpec

__all__ = [
    "Backend",
    "BACKEND_NAMES",
    "make",
    "make_vec",
    "sb3_vec_env",
    "env_spaces",
    "list_envs",
    "resolve_env_id",
    "default_step_limit_kwargs",
    "episode_step_limit",
    "EnvInfo",
]


#: how an env's worker runs (ldm/envs/transport/backends.py connects each; tests/envs check the two agree)
Backend = Literal["process", "inprocess", "ray", "docker"]
BACKEND_NAMES: tuple[str, ...] = get_args(Backend)


def make(
    env_id: str,
    backend: Backend = "process",
    sandbox: bool = False,
    timeout: float = 60.0,
    **make_kwargs: Any,
):
    """One env, isolated according to `backend`, as a `gymnasium.Env`."""
    from ldm.envs.proxy import ProxyEnv

    spec, rid = resolve_env_id(env_id)
    return ProxyEnv(spec, rid, backend=backend, sandbox=sandbox, timeout=timeout, **make_kwargs)


def make_vec(
    env_id: str,
    num_envs: int,
    backend: Backend = "process",
    workers: int | None = None,
    sandbox: bool = False,
    timeout: float = 60.0,
    shared_memory: bool = True,
    poll_us: float | None = None,
    **make_kwargs: Any,
):
    """`num_envs` copies of an env over a few workers, as a `gymnasium.vector.VectorEnv`.
    `workers` defaults to one per CPU core (at most `num_envs`): heavy envs step in parallel
    while the client waits; a light env (CartPole) runs faster with `workers=1`, where client
    and worker both poll for each other's wake-up (docs/benchmarks.md). With `shared_memory`
    (default) each worker's slice of the batch travels through a buffer shared with it where
    the backend allows (ldm/envs/transport/shm.py); False keeps the framed path. `poll_us`: how long each
    side polls for the other before blocking (None: `LDM_POLL_US`, else 500; 0 blocks at once;
    ldm/envs/worker/poll.py)."""
    from ldm.envs.vector import ProxyVectorEnv

    spec, rid = resolve_env_id(env_id)
    return ProxyVectorEnv(
        spec,
        rid,
        num_envs,
        backend=backend,
        workers=workers,
        sandbox=sandbox,
        timeout=timeout,
        shared_memory=shared_memory,
        poll_us=poll_us,
        **make_kwargs,
    )


def sb3_vec_env(
    env_id: str,
    num_envs: int,
    backend: Backend = "process",
    workers: int | None = None,
    sandbox: bool = False,
    **make_kwargs: Any,
):
    """The same vector env as a Stable-Baselines3 `VecEnv` (imports SB3)."""
    from ldm.envs.sb3 import HubVecEnv

    return HubVecEnv(
        make_vec(env_id, num_envs, backend=backend, workers=workers, sandbox=sandbox, **make_kwargs)
    )


def episode_step_limit(env_id: str, longest_episode: int, factor: float) -> int | None:
    """A per-episode step limit for playing an env: `factor` x the longest episode seen
    (e.g. a reference run's), or None where the catalog declares a time limit at least as
    short for the env (the limit given to the worker would replace the declared one, so it
    applies only where it is shorter), or where `factor` or `longest_episode` is 0."""
    if not factor or longest_episode < 1:
        return None
    from ldm.envs.worker.episode_wrappers import STEP_LIMIT_KWARG

    limit = max(1, int(math.ceil(factor * longest_episode)))
    spec, rid = resolve_env_id(env_id)
    declared = spec.kwargs_for(rid).get(STEP_LIMIT_KWARG)
    return limit if declared is None or limit < declared else None


def default_step_limit_kwargs(limit: int | None) -> dict[str, int]:
    """The make kwargs of the hub's default step limit, which the worker applies only to an
    env without a time limit of its own (ldm/envs/worker/episode_wrappers.py); none for None."""
    from ldm.envs.worker.episode_wrappers import DEFAULT_STEP_LIMIT_KWARG

    return {DEFAULT_STEP_LIMIT_KWARG: int(limit)} if limit else {}


def env_spaces(env_id: str, backend: Backend = "process") -> tuple[SpaceSpec, SpaceSpec]:
    """(observation, action) SpaceSpecs of an env: from the catalog, else from a live env."""
    known = catalog_spaces(env_id)
    if known is not None:
        return known
    from ldm.spaces import from_gym_space

    env = make(env_id, backend=backend)
    try:
        return from_gym_space(env.observation_space), from_gym_space(env.action_space)
    finally:
        env.close()
