"""Discover's constructor arguments: envs whose constructor requires arguments that their
registration does not give (`missing 2 required positional arguments: 'P' and 'R'`) get the
values the library's own examples pass (README, docstrings, shipped tests; read by
`probe_envs.documented_kwargs` in the library's venv), recorded as `env_kwargs."Id"` in the
spec and tried again; the ones no example covers are named as needing a user's arguments.

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.discover.modules import probe
from ldm.envs.library.discover.requirements import req_name
from ldm.envs.library.discover.trials import Outcome, retry_with_wrappers, try_all
from ldm.envs.library.trial import EnvTrial
from ldm.envs.library.venvs import ensure_venv
from ldm.errors import LDMError

#: A constructor called without arguments it requires (any Python's wording).
MISSING_ARGS = re.compile(r"missing \d+ required (positional|keyword-only) arguments?")
#: How a failure reason starts for an env that needs a user's constructor arguments.
NEEDS_ARGUMENTS = "needs constructor arguments"


def needs_arguments(failed: dict[str, str]) -> dict[str, str]:
    """The failed envs that wait for a user's constructor arguments, with the reason."""
    return {rid: why for rid, why in failed.items() if why.startswith(NEEDS_ARGUMENTS)}


def retry_with_documented_kwargs(
    spec: LibrarySpec,
    passed: dict[str, EnvTrial],
    failed: dict[str, str],
    timeout: float,
    workers: int,
    steps: int,
) -> Outcome:
    """Envs that failed for want of constructor arguments: take the values the library's
    examples give (`env_kwargs`) and try them again; name what is still missing."""
    wanting = sorted(rid for rid, why in failed.items() if MISSING_ARGS.search(why))
    if not wanting:
        return spec, passed, failed
    dist = req_name(spec.requirements[0]) if spec.requirements else spec.name
    try:
        found = probe(ensure_venv(spec), "kwargs", dist, spec.api, *spec.imports, "--", *wanting)
    except (LDMError, subprocess.TimeoutExpired):
        return spec, passed, failed  # the reasons stand as they are
    documented = {rid: f["kwargs"] for rid, f in found.items() if f["kwargs"] and not f["missing"]}
    failed = dict(failed)
    if documented:
        env_kwargs = {**spec.env_kwargs, **{rid: {**documented[rid]} for rid in documented}}
        spec = replace(spec, env_kwargs=env_kwargs)
        again, still = try_all(spec, sorted(documented), timeout, workers, steps, progress=False)
        passed = {**passed, **again}
        failed = {**{k: v for k, v in failed.items() if k not in documented}, **still}
        dropped = {rid: kw for rid, kw in spec.env_kwargs.items() if rid not in still}
        spec = replace(spec, env_kwargs=dropped)  # values that did not help are not kept
        if still:  # made now, an env may show what a wrapper fixes (a Tuple observation)
            spec, passed, failed = retry_with_wrappers(
                spec, passed, failed, timeout, workers, steps
            )
    for rid in wanting:
        f = found.get(rid)
        if rid in failed and f and f["missing"] and MISSING_ARGS.search(failed[rid]):
            given = f" (its examples give {', '.join(sorted(f['kwargs']))})" if f["kwargs"] else ""
            failed[rid] = (
                f"{NEEDS_ARGUMENTS} {', '.join(f['missing'])} that neither its signature nor its "
                f"docstrings, README or tests give a value for{given}: set "
                f'env_kwargs."{rid}" in the spec'
            )
    return spec, passed, failed
