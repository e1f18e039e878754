"""Discover's view into a library's venv: which modules register its envs (through
`ldm/envs/library/probe.py`, run by the library's own interpreter) and which env ids they add.

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.discover.requirements import req_name
from ldm.envs.library.venvs import ensure_venv
from ldm.envs.transport import messages
from ldm.envs.transport.backends import connect
from ldm.errors import EnvError, LDMError

PROBE = Path(__file__).parent.parent / "probe.py"
#: Seconds a library's first import may take in a worker (numba/jax/torch compile on import).
IMPORT_TIMEOUT = 600.0


def probe(python: Path, *args: str, timeout: float = 600) -> Any:
    """Run probe.py with a library's interpreter; its JSON answer."""
    proc = subprocess.run(
        [str(python), str(PROBE), *args], capture_output=True, text=True, timeout=timeout
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise EnvError(f"probe {args[0]} failed with {python}: {tail}")
    return json.loads(lines[-1])


def find_registering_modules(spec: LibrarySpec, python: Path) -> LibrarySpec:
    """The spec with `imports` (and `api`) set to what registers the package's envs."""
    dist = req_name(spec.requirements[0]) if spec.requirements else spec.name
    found = probe(python, "modules", dist)
    if not found["modules"]:
        errors = {k: v for k, v in found["errors"].items() if not k.endswith("traceback")}
        detail = "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:3])
        raise EnvError(
            f"no module of {dist!r} registers Gym/Gymnasium envs"
            + (f" (imports failed: {detail})" if detail else "")
            + "; set `imports` in the spec to the module that registers them"
        )
    return replace(spec, imports=found["modules"], api=found["api"] or spec.api)


def candidate_ids(spec: LibrarySpec, backend: str = "process") -> list[str]:
    """Env ids the library registers that pass its include/exclude patterns."""
    conn = connect(backend, replace(spec, imports=[]), f"{spec.name}[discover]")
    try:
        before = set(conn.call(messages.list_ids()))
        conn.call(messages.init(spec), IMPORT_TIMEOUT)
        after = set(conn.call(messages.list_ids()))
    finally:
        conn.close()
    # a library's envs are what its imports add; the specs of gym/gymnasium's own families
    # (imports none or only the API module) take every registered id their patterns allow
    own = set(spec.imports) <= {"gymnasium", "gym"}
    new = after if own else after - before
    return sorted(rid for rid in new if spec.wants(rid))


def env_families(spec: LibrarySpec, ids: list[str]) -> dict[str, str]:
    """Per env id: its entry point's `module:Qualname` (its family), read in the library's
    venv; {} when the probe fails (the family is a count, not a requirement)."""
    if not ids:
        return {}
    try:
        return probe(ensure_venv(spec), "families", spec.api, *spec.imports, "--", *ids)
    except (LDMError, subprocess.TimeoutExpired, OSError, ValueError):
        return {}
