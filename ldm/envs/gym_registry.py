"""The catalog in Gymnasium's registry: `gymnasium.make("classic-control/CartPole-v1")`.

Every catalogued env is registered under `<library>/<id>` (the namespace is the
library; an id with its own namespace, `ale/ALE/Pong-v5`, joins it to the name with a dash:
`ale/ALE-Pong-v5`, since Gymnasium ids hold one slash) when gymnasium is imported in a
process that imported ldm (ldm/gym_hook.py). Registering is lazy too: each EnvSpec
names this module's entry points as strings, so nothing is built, imported or started until
an env is made; then `make_env` / `make_vec_env` make the isolated env exactly as
`ldm.envs.make` / `make_vec` do. The spec's kwargs hold the ldm id (`ldm_id`) and whatever
was passed to `make` (backend, render_mode, ...), so `env.spec.make()`, Gymnasium's
`check_env` (its render checks) and Minari's `recover_environment()` recreate the same env.

Owns: `register_envs` and the two entry points (the ids and specs are gym_spec.py's).
Imports gymnasium, ldm.envs.gym_spec and the library side's catalog (the front door only
inside the entry points, whose names the specs hold: the proxies import gym_spec, not this
module, so no import circles back); must not import an environment library, torch, or any
later part.
"""

from __future__ import annotations

from typing import Any

from ldm.envs.gym_spec import env_spec
from ldm.errors import LDMError


def register_envs(catalog_dir: str | None = None) -> int:
    """Put every catalogued env (of the built-in catalog and $LDM_CATALOG_PATH, or of
    `catalog_dir`) in Gymnasium's registry; returns how many. Specs are written straight into
    the registry: `gymnasium.register` checks each id against all others, which for ~2,000
    ids costs seconds; the one conflict it would catch (an unversioned id beside versioned
    ones of the same name) is skipped here instead."""
    from gymnasium.envs.registration import registry

    from ldm.envs.library.catalog import load_catalog

    specs = {}
    for lib in load_catalog(catalog_dir).values():
        for rid in lib.envs:
            spec = env_spec(f"{lib.name}/{rid}")
            if spec is not None:  # the first of two ids that map to one wins
                specs.setdefault(spec.id, spec)
    versioned = {(s.namespace, s.name) for s in specs.values() if s.version is not None}
    for spec in specs.values():
        if spec.version is None and (spec.namespace, spec.name) in versioned:
            continue
        registry[spec.id] = spec
    return len(specs)


def register_at_import() -> None:
    """`register_envs()` for ldm/gym_hook.py: a catalog that cannot be read (a broken spec on
    $LDM_CATALOG_PATH) is a warning here, so that importing gymnasium or ldm still works and
    the command or call that reads the catalog reports the error in full."""
    import warnings

    try:
        register_envs()
    except (LDMError, OSError, ValueError) as e:
        warnings.warn(f"ldm: catalogued envs are not in Gymnasium's registry: {e}", stacklevel=3)


def make_env(ldm_id: str, **kwargs: Any) -> Any:
    """Entry point of every registered env: `ldm.envs.make(ldm_id, **kwargs)`."""
    from ldm.envs import make

    return make(ldm_id, **kwargs)


def make_vec_env(ldm_id: str, num_envs: int = 1, **kwargs: Any) -> Any:
    """Vector entry point (`gymnasium.make_vec`): `ldm.envs.make_vec(ldm_id, num_envs, ...)`,
    the envs spread over isolated workers."""
    from ldm.envs import make_vec

    return make_vec(ldm_id, num_envs, **kwargs)
