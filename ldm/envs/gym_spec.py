"""The Gymnasium id and `EnvSpec` of an ldm env: what `gymnasium.make` and Minari's
`recover_environment()` use to make it again.

Owns: the id convention (`gym_id`: `<library>/<id>`, an inner namespace dash-joined),
`env_spec` and the entry points' names (`ENTRY_POINT`, `VECTOR_ENTRY_POINT`: functions of
gym_registry.py, named as strings). Imports gymnasium only inside `env_spec`; must not import
the proxies, gym_registry.py (which imports this module), an environment library or torch.
"""

from __future__ import annotations

from typing import Any

ENTRY_POINT = "ldm.envs.gym_registry:make_env"
VECTOR_ENTRY_POINT = "ldm.envs.gym_registry:make_vec_env"
#: the EnvSpec kwarg that carries the ldm id to the entry points
ID_KWARG = "ldm_id"


def gym_id(env_id: str) -> str:
    """The Gymnasium id of an ldm env id: `<library>/<id>`, an inner namespace dash-joined."""
    library, _, rid = env_id.partition("/")
    return f"{library}/{rid.replace('/', '-')}"


def env_spec(env_id: str, **kwargs: Any) -> Any:
    """The `gymnasium.envs.registration.EnvSpec` that makes `env_id` with `kwargs` (those of
    `ldm.envs.make`: backend, sandbox, timeout, render_mode, the env's own); None for an id
    that is not of Gymnasium's form even dash-joined (reachable through ldm.envs.make only)."""
    from gymnasium.envs.registration import EnvSpec
    from gymnasium.error import Error

    try:
        return EnvSpec(
            gym_id(env_id),
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs={ID_KWARG: env_id, **kwargs},
        )
    except Error:
        return None
