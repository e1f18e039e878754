"""`ldm envs discover`: automated integration of a library.

From a PyPI package name (or a catalog spec) to a working spec, without hand edits where the
hub can do the work:
1. build the library's venv; when the build or the import fails on the current Python, retry
   with older interpreters and pins (`builds.py`: `BUILD_VARIANTS`) and record which worked;
   modules an import reports missing become requirements (`requirements.py`);
2. find the modules that register its envs (`modules.py`, which runs `ldm/envs/library/probe.py` in
   the library's venv: entry points, top-level packages, `<pkg>.envs`/`<pkg>.gym`...,
   modules its README and shipped tests import, the registration calls they make,
   submodules calling `register(`, then its own functions whose name and signature say they
   register, e.g. `register_envs()`) and which API (gym or gymnasium) they register with,
   and the env ids they add to the registry;
3. try each id in parallel workers (`trials.py`, over `ldm/envs/library/trial.py`: make, limits,
   reset, steps, all within a time budget per env), writing the spec as it goes
   (`partial.py`: a stopped discovery keeps what it found), fixing what the hub can (missing
   optional dependencies, declared wrappers: a team of agents behind one view, decided from
   the spaces; constructor arguments the library's examples give, `arguments.py`, which
   names the envs that still need a user's) and naming smaller variants of envs over the
   paper's limits (`hints.py`);
4. check every env it lists with `ldm envs check`'s own check on the spec it will write
   (`checks.py`; `seed_global_rngs` added where it makes a seed check pass), so the recorded
   check is the one `ldm envs check` repeats;
5. write the spec's `envs` / `failed` / `env_kwargs`, its `discovery` record and the
   `<name>.spaces.json` sidecar (with each env's family: its class, and its check) that
   `ldm envs list` reads (`command.py`, `record.py`).

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from ldm.envs.library.discover.builds import BUILD_VARIANTS, BuildVariant
from ldm.envs.library.discover.command import DiscoverReport, discover_library
from ldm.envs.library.discover.hints import limit_hints
from ldm.envs.library.discover.record import spec_text
from ldm.envs.library.discover.requirements import missing_requirements

__all__ = [
    "BUILD_VARIANTS",
    "BuildVariant",
    "DiscoverReport",
    "discover_library",
    "limit_hints",
    "missing_requirements",
    "spec_text",
]
