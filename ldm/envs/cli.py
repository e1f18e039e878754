"""`ldm envs ...`: list, check, setup and discover environment libraries."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import tyro


def list_(
    library: str | None = None,
    json_: Annotated[bool, tyro.conf.arg(name="json")] = False,
) -> int:
    """List catalogued envs with their observation and action SpaceSpecs.

    Args:
        library: Only this library.
        json_: Print a JSON list of objects with keys id, library, observation, action.
    """
    from ldm.envs.registry import list_envs

    envs = list_envs(library)
    if json_:
        print(json.dumps([e.to_dict() for e in envs], indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(envs)} envs in {len({e.library for e in envs})} libraries")
    for col in ("id", "library", "observation", "action"):
        table.add_column(col, overflow="fold")
    for e in envs:
        table.add_row(
            e.id,
            e.library,
            e.observation.describe() if e.observation else "?",
            e.action.describe() if e.action else "?",
        )
    Console().print(table)
    return 0


def check(
    ids: tyro.conf.Positional[tuple[str, ...]],
    backend: str = "process",
    sandbox: bool = False,
) -> int:
    """Run Gymnasium's check_env and ldm's checks on envs through the proxy; exit 0 only if all pass.

    Args:
        ids: Env ids, e.g. classic-control/CartPole-v1.
        backend: inprocess, process, ray or docker.
        sandbox: Run the workers under the bubblewrap sandbox.
    """
    from ldm.envs.check import check as check_one

    failed = 0
    for env_id in ids:
        r = check_one(env_id, backend=backend, sandbox=sandbox)
        mark = "PASS" if r.ok else "FAIL"
        print(f"{mark} {env_id}  obs={r.observation} act={r.action}")
        for p in r.problems:
            print(f"     - {p}")
        failed += not r.ok
    print(f"{len(ids) - failed} passed, {failed} failed")
    return 1 if failed else 0


def setup(libraries: tyro.conf.Positional[tuple[str, ...]]) -> int:
    """Build the isolated virtual environments of libraries ahead of time.

    Args:
        libraries: Library names from the catalog (see `ldm envs list`).
    """
    from ldm.envs.catalog import get_library
    from ldm.envs.venvs import ensure_venv

    for name in libraries:
        python = ensure_venv(get_library(name), quiet=False)
        print(f"{name}: {python}")
    return 0


def discover(
    spec_or_package: tyro.conf.Positional[str],
    catalog_dir: str | None = None,
    timeout: float = 60.0,
    workers: int = 2,
) -> int:
    """Find the env ids a library registers, try each in its worker, write the spec.

    Args:
        spec_or_package: A library name from the catalog, a spec file, or a PyPI package.
        catalog_dir: Catalog directory to write to (default: ldm's own).
        timeout: Seconds allowed per env before it is recorded as failed (hung).
        workers: Worker processes trying envs in parallel.
    """
    from ldm.envs.discover import discover_library

    report = discover_library(
        spec_or_package, catalog_dir=catalog_dir, timeout=timeout, workers=workers
    )
    print(report.summary(), file=sys.stderr)
    return 0


COMMANDS = {"list": list_, "check": check, "setup": setup, "discover": discover}
