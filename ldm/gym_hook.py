"""When the catalog enters Gymnasium's registry: as Gymnasium is imported, not as ldm is.

`import ldm` registered the catalog's ~2,300 envs itself, which imported gymnasium, numpy and
the catalog's TOML files in every `ldm` command (~0.3-1.6 s of `ldm --help`, most of it
gymnasium). Registering is wanted only by whoever calls Gymnasium (`gymnasium.make(
"classic-control/CartPole-v1")`, `gymnasium.spec`, `gymnasium.pprint_registry`), and that
code has imported gymnasium first. So `install()` registers at once when gymnasium is
already imported, and otherwise puts a finder on `sys.meta_path` that, the first time
gymnasium is imported, lets Gymnasium's own loader run and then registers the catalog
(ldm/envs/gym_registry.py `register_at_import`) before the importing code gets the module
back. The registry stays Gymnasium's own dict: nothing of Gymnasium is patched.

Owns: `install` and the finder. Imports the standard library only (ldm.envs.gym_registry at
registration time); must not import gymnasium, numpy or any part of ldm at import time.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any


def _register() -> None:
    """The catalog into Gymnasium's registry; never an error out of `import gymnasium`."""
    try:
        from ldm.envs.gym_registry import register_at_import

        register_at_import()
    except Exception as e:  # e.g. a broken ldm install: gymnasium itself must still import
        import warnings

        warnings.warn(f"ldm: catalogued envs are not in Gymnasium's registry: {e}", stacklevel=2)


class _AfterGymnasium(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on gymnasium's first import it takes the spec the other finders
    give and has its loader register the catalog once gymnasium's package has run."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "gymnasium":
            return None
        if self in sys.meta_path:  # once; and the lookup below must not find this finder
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_package = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run_package(module)
            _register()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's loader only
        return spec


def install() -> None:
    """Register the catalog now if gymnasium is imported, else when it first is."""
    if "gymnasium" in sys.modules:
        _register()
    elif not any(isinstance(f, _AfterGymnasium) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasium())
