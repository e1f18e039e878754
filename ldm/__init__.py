"""ldm: Large Decision Models — one transformer policy trained offline on many RL environments.

The package is a pipeline of parts (see docs/architecture.md); importing `ldm` itself pulls
in no torch and no gymnasium. The catalogued envs enter Gymnasium's registry
(`gymnasium.make("classic-control/CartPole-v1")`; ldm/envs/gym_registry.py) when gymnasium is
imported, or at `import ldm` where it already is (ldm/gym_hook.py): no env is built or started.

Imports ldm.gym_hook; nothing else of its own.
"""

__version__ = "0.1.0"

from ldm.gym_hook import install as _install_gym_hook  # noqa: E402

_install_gym_hook()
