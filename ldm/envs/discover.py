"""`ldm envs discover`: automated integration of a library.

Builds the library's venv, imports its modules in a worker, finds the env ids they register
(the registry after the import minus the registry before it; all of it for gymnasium's own
families), tries each id in workers (make, reset, a few random steps, spaces within the
paper's limits after the declared wrappers), and writes the spec's `envs` / `failed` plus the
`<name>.spaces.json` sidecar that `ldm envs list` reads.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from ldm.atomic import write_text_atomic
from ldm.envs.backends import Connection, connect, init_message
from ldm.envs.catalog import CATALOG_DIR, LibrarySpec, load_catalog, load_spec
from ldm.envs.proxy import space_from_desc
from ldm.envs.registry import _sidecar, spaces_path
from ldm.errors import LDMError
from ldm.spaces import check_limits, from_gym_space


@dataclass
class DiscoverReport:
    """What discovery found for one library."""

    library: str
    spec_path: str
    passed: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.library}: {len(self.passed)} envs pass, {len(self.failed)} failed "
            f"-> {self.spec_path}"
        )


def resolve_spec(spec_or_package: str, catalog_dir: str | None) -> LibrarySpec:
    """A catalog name, a spec file, or a PyPI package name (a new spec skeleton)."""
    if spec_or_package.endswith(".toml"):
        return load_spec(spec_or_package)
    catalog = load_catalog(catalog_dir)
    if spec_or_package in catalog:
        return catalog[spec_or_package]
    name = spec_or_package.split("[")[0].split("=")[0].strip()
    path = Path(catalog_dir or CATALOG_DIR) / f"{name}.toml"
    return LibrarySpec(
        name=name,
        domain="unknown",
        requirements=[spec_or_package],
        imports=[name.replace("-", "_")],
        source=f"https://pypi.org/project/{name}/",
        path=str(path),
    )


def _try_env(
    conn: Connection, spec: LibrarySpec, rid: str, timeout: float, steps: int
) -> dict[str, Any]:
    made = conn.call(
        {"cmd": "make", "env_id": rid, "kwargs": spec.kwargs_for(rid), "count": 1}, timeout
    )
    handle = made["handles"]
    try:
        obs_space = space_from_desc(made["spaces"]["observation"])
        act_space = space_from_desc(made["spaces"]["action"])
        obs_spec, act_spec = from_gym_space(obs_space), from_gym_space(act_space)
        check_limits(obs_spec, "observation", f"{spec.name}/{rid}")
        check_limits(act_spec, "action", f"{spec.name}/{rid}")
        conn.call({"cmd": "reset", "handles": handle, "seeds": [0]}, timeout)
        act_space.seed(0)
        for _ in range(steps):
            a = np.asarray(act_space.sample())
            conn.call(
                {"cmd": "step", "handles": handle, "actions": [a], "autoreset": True}, timeout
            )
        return {"observation": obs_spec.to_dict(), "action": act_spec.to_dict()}
    finally:
        if conn.alive:
            conn.call({"cmd": "close", "handles": handle}, timeout)


def candidate_ids(spec: LibrarySpec, backend: str = "process") -> list[str]:
    """Env ids the library registers that pass its include/exclude patterns."""
    conn = connect(backend, replace(spec, imports=[]), f"{spec.name}[discover]")
    try:
        before = set(conn.call({"cmd": "list_ids"}))
        conn.call(init_message(spec))
        after = set(conn.call({"cmd": "list_ids"}))
    finally:
        conn.close()
    # a library's envs are what its imports add; gymnasium's own specs (no imports) take all
    new = after - before if spec.imports else after
    return sorted(rid for rid in new if spec.wants(rid))


def discover_library(
    spec_or_package: str,
    catalog_dir: str | None = None,
    timeout: float = 60.0,
    workers: int = 2,
    steps: int = 5,
    backend: str = "process",
    progress: bool = True,
) -> DiscoverReport:
    """Discover, try and record every env of a library; returns what passed and failed."""
    from tqdm import tqdm

    spec = resolve_spec(spec_or_package, catalog_dir)
    ids = candidate_ids(spec, backend)
    report = DiscoverReport(spec.name, spec.path)
    todo: queue.Queue[str] = queue.Queue()
    for rid in ids:
        todo.put(rid)
    lock = threading.Lock()
    bar = tqdm(total=len(ids), desc=f"discover {spec.name}", disable=not progress)

    def work(k: int) -> None:
        conn: Connection | None = None
        while True:
            try:
                rid = todo.get_nowait()
            except queue.Empty:
                break
            try:
                if conn is None or not conn.alive:
                    conn = connect(backend, spec, f"{spec.name}[discover {k}]")
                result: dict[str, Any] | str = _try_env(conn, spec, rid, timeout, steps)
            except LDMError as e:
                result = str(e).splitlines()[0][:300]
            except Exception as e:  # a library bug is a finding about that env
                result = f"{type(e).__name__}: {e}"[:300]
            with lock:
                if isinstance(result, dict):
                    report.passed[rid] = result
                else:
                    report.failed[rid] = result
                bar.update()
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    write_discovery(spec, report)
    return report


def write_discovery(spec: LibrarySpec, report: DiscoverReport) -> None:
    """Write the spec's envs/failed and its spaces sidecar (each via a temp file + rename)."""
    updated = replace(spec, envs=sorted(report.passed), failed=dict(sorted(report.failed.items())))
    path = Path(spec.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, tomli_w.dumps(updated.to_toml_dict()))
    side = {rid: report.passed[rid] for rid in sorted(report.passed)}
    write_text_atomic(spaces_path(updated), json.dumps(side, indent=1))
    load_catalog.cache_clear()
    _sidecar.cache_clear()
