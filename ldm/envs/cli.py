"""`ldm envs ...`: list, check, setup and discover environment libraries.

Owns: the `COMMANDS` of `ldm envs`. Imports tyro, rich and the hub's modules inside each
command (so `ldm envs --help` stays fast); must not import torch, an environment library or
any later part (data, refgen, model, ...).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, NamedTuple

import tyro


class TableData(NamedTuple):
    """A table to show: a title, column names, rows of cells and an optional last row."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    total: tuple[str, ...] | None = None


def show(table: TableData) -> None:
    """A rich table on a terminal; piped (`ldm envs list | grep CartPole`), plain lines with
    tab-separated cells that never wrap, the title and the column names as `#` comments."""
    if not sys.stdout.isatty():
        lines = [f"# {table.title}", "# " + "\t".join(table.columns)]
        lines += ["\t".join(r) for r in table.rows + ([table.total] if table.total else [])]
        print("\n".join(lines))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=table.title)
    for col in table.columns:
        t.add_column(col, overflow="fold")
    for row in table.rows:
        t.add_row(*row)
    if table.total:
        t.add_section()
        t.add_row(*table.total)
    Console().print(t)


def list_(
    library: str | None = None,
    json_: Annotated[bool, tyro.conf.arg(name="json")] = False,
    failed: bool = False,
    libraries: bool = False,
) -> int:
    """List catalogued envs with their SpaceSpecs and check results, then per-library counts
    (plain tab-separated lines when the output is not a terminal).

    Args:
        library: Only this library.
        json_: Print a JSON list of objects with keys id, library, observation, action, check
            (with --failed: id, library, reason).
        failed: List the registered envs discovery could not take, with the reason.
        libraries: Print only the per-library table (domain, envs, families: distinct env
            classes, flagged, failed), with how many libraries have an env passing its checks.
    """
    from dataclasses import asdict

    from ldm.envs.library.registry import list_envs, list_failed

    if failed:
        bad = list_failed(library)
        if json_:
            print(json.dumps([asdict(f) for f in bad], indent=1))
            return 0
        rows = [(f.id, f.reason) for f in bad]
        show(TableData(f"{len(bad)} envs failed discovery", ("id", "reason"), rows))
        return 0
    envs = list_envs(library)
    if json_:
        print(json.dumps([e.to_dict() for e in envs], indent=1))
        return 0
    if not libraries:
        show(_env_table(envs))
    show(_library_table(envs, library))
    return 0


def _env_table(envs: list) -> TableData:
    flagged = sum(e.checked and not e.check_ok for e in envs)
    checked = sum(e.checked for e in envs)
    rows = [
        (
            e.id,
            e.observation.describe() if e.observation else "?",
            e.action.describe() if e.action else "?",
            "-" if not e.checked else "ok" if e.check_ok else f"FAIL: {e.problems[0]}",
        )
        for e in envs
    ]
    return TableData(
        f"{len(envs)} envs in {len({e.library for e in envs})} libraries "
        f"({checked} checked, {flagged} fail their own checks)",
        ("id", "observation", "action", "check"),
        rows,
    )


def _library_table(envs: list, library: str | None) -> TableData:
    from collections import Counter

    from ldm.envs.library.catalog import get_library, load_catalog

    specs = [get_library(library)] if library else list(load_catalog().values())
    count = Counter(e.library for e in envs)
    flagged = Counter(e.library for e in envs if e.checked and not e.check_ok)
    passing = Counter(e.library for e in envs if e.check_ok)
    families = {s.name: {e.family for e in envs if e.library == s.name} for s in specs}
    good = {s.name: {e.family for e in envs if e.library == s.name and e.check_ok} for s in specs}
    domains = Counter(s.domain for s in specs if count[s.name])
    listed = sum(1 for s in specs if count[s.name])
    rows = []
    for s in sorted(specs, key=lambda s: (s.domain, s.name)):
        state = "" if s.installable else "not installable (see its note)"
        if s.discovery.get("partial"):
            state = f"discovery stopped after {s.discovery.get('tried', 0)} envs (partial)"
        fams = f"{len(families[s.name])} ({len(good[s.name])} passing)"
        rows.append(
            (
                s.name,
                s.domain,
                str(count[s.name]),
                fams,
                str(flagged[s.name]),
                str(len(s.failed)),
                state,
            )
        )
    total = (
        f"total: {listed} libraries",
        f"{len(domains)} domains",
        str(sum(count.values())),
        f"{sum(len(f) for f in families.values())} ({sum(len(f) for f in good.values())} passing)",
        str(sum(flagged.values())),
        str(sum(len(s.failed) for s in specs)),
        "",
    )
    return TableData(
        f"{listed} libraries with envs ({sum(1 for n in passing if passing[n])} with an env "
        f"passing its checks), {len(domains)} domains; families: distinct env classes",
        ("library", "domain", "envs", "families", "flagged", "failed", "note"),
        rows,
        total,
    )


def check(
    ids: tyro.conf.Positional[tuple[str, ...]],
    backend: str = "process",
    sandbox: bool = False,
    record: bool = False,
    timeout: float = 60.0,
) -> int:
    """Run Gymnasium's check_env and ldm's checks on envs through the proxy; exit 0 only if all pass.

    Args:
        ids: Env ids, e.g. classic-control/CartPole-v1, or library names (all their envs).
        backend: inprocess, process, ray or docker.
        sandbox: Run the workers under the bubblewrap sandbox.
        record: Write each outcome into its library's `<name>.spaces.json` (the `check` column
            of `ldm envs list`) and the spaces the env has with the spec's declared wrappers,
            e.g. after a wrapper was added to the library's spec; the spec file stays as it is.
        timeout: Seconds the worker may take per call, its library's first import included
            (raise it on a busy machine: a call cut short is recorded as a failed check).
    """
    from ldm.envs.library.catalog import get_library
    from ldm.envs.library.check import check as check_one

    ids = tuple(
        env for i in ids for env in ([i] if "/" in i else [f"{i}/{e}" for e in get_library(i).envs])
    )
    failed, outcomes, spaces = 0, {}, {}
    for env_id in ids:
        r = check_one(env_id, backend=backend, sandbox=sandbox, timeout=timeout)
        mark = "PASS" if r.ok else "FAIL"
        print(f"{mark} {env_id}  obs={r.observation} act={r.action}")
        for p in r.problems:
            print(f"     - {p}")
        failed += not r.ok
        outcomes[env_id] = r.problems
        if r.spaces:
            spaces[env_id] = r.spaces
    print(f"{len(ids) - failed} passed, {failed} failed")
    if record:
        from ldm.envs.library.discover.record import record_checks

        missing = record_checks(outcomes, spaces=spaces)
        print(f"recorded {len(outcomes) - len(missing)} checks in the catalog's spaces files")
        if missing:
            print(f"not recorded (never discovered; run `ldm envs discover`): {', '.join(missing)}")
    return 1 if failed else 0


def setup(libraries: tyro.conf.Positional[tuple[str, ...]]) -> int:
    """Build the isolated virtual environments of libraries ahead of time.

    Args:
        libraries: Library names from the catalog (see `ldm envs list`).
    """
    from ldm.envs.library.catalog import get_library
    from ldm.envs.library.venvs import ensure_venv, venv_record

    for name in libraries:
        spec = get_library(name)
        python = ensure_venv(spec)
        record = venv_record(spec)  # None for venvs built before records were kept
        if record is None:
            print(f"{name}: {python}")
            continue
        source = f", from {record['source']}" if record.get("source") else ""
        print(
            f"{name}: {python} (Python {record['python_version']}, {record['installer']}, "
            f"built in {record['build_seconds']} s{source})"
        )
    return 0


def discover(
    spec_or_package: tyro.conf.Positional[str],
    timeout: float = 60.0,
    workers: int = 2,
    domain: str | None = None,
) -> int:
    """Build a library's venv, find the modules that register its envs, try each env, write the spec.

    Args:
        spec_or_package: A library name from the catalog, a spec file, or a PyPI package.
            The spec is written to the first user catalog directory (`ldm --catalog-dir DIR`
            or $LDM_CATALOG_PATH), else to ldm's own in a source checkout.
        timeout: Seconds allowed per env before it is recorded as failed (hung).
        workers: Worker processes trying envs in parallel.
        domain: Field of application written into a new spec (control, games, finance, ...).
    """
    from ldm.envs.library.discover import discover_library

    report = discover_library(spec_or_package, timeout=timeout, workers=workers, domain=domain)
    print(report.summary(), file=sys.stderr)
    return 0


COMMANDS = {"list": list_, "check": check, "setup": setup, "discover": discover}
