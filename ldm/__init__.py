"""ldm: Large Decision Models — one transformer policy trained offline on many RL environments.

The package is a pipeline of parts (see docs/architecture.md); importing `ldm` itself pulls
in no torch. It puts the catalogued envs in Gymnasium's registry (`gymnasium.make(
"classic-control/CartPole-v1")`; ldm/envs/gym_registry.py): gymnasium and the catalog's
TOML files are read, no env is built or started.

Imports ldm.envs.gym_registry; nothing else of its own.
"""

__version__ = "0.1.0"

from ldm.envs.gym_registry import register_at_import as _register_at_import  # noqa: E402

_register_at_import()
