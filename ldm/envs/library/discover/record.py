"""Discover's record: the spec file (edited in place, so a user's comments and layout
survive a rediscovery) and its `<name>.spaces.json` sidecar, written atomically.

Imports ldm's hub modules; never an environment library.
"""

from __future__ import annotations

import copy
import json
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any

import tomlkit

from ldm.atomic import write_text_atomic
from ldm.envs.library.catalog import LibrarySpec, get_library, load_catalog
from ldm.envs.library.registry import _sidecar, spaces_path
from ldm.envs.library.trial import EnvTrial


def write_discovery(spec: LibrarySpec, passed: dict[str, EnvTrial], failed: dict[str, str]) -> None:
    """Write the spec's envs/failed/discovery and its spaces sidecar (temp file + rename)."""
    updated = replace(spec, envs=sorted(passed), failed=dict(sorted(failed.items())))
    path = Path(spec.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, spec_text(path, updated.to_toml_dict()))
    side = {rid: passed[rid].to_sidecar() for rid in sorted(passed)}
    write_text_atomic(spaces_path(updated), json.dumps(side, indent=1))
    load_catalog.cache_clear()
    _sidecar.cache_clear()


def record_checks(
    results: dict[str, list[str]],
    catalog_dir: str | None = None,
    spaces: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Write check outcomes (env id -> its problems, [] = passed) into the `check` field of
    their libraries' sidecars, and, for the ids in `spaces` (env id -> {"observation",
    "action"} SpaceSpec dicts), the spaces the check found (a wrapper added to the spec may
    change them); spec files stay as they are. Returns the ids that have no sidecar entry
    to update (never discovered: run `ldm envs discover` for them)."""
    spaces = spaces or {}
    by_library: dict[str, dict[str, list[str]]] = {}
    for env_id, problems in results.items():
        library, _, rid = env_id.partition("/")
        by_library.setdefault(library, {})[rid] = problems
    missing = []
    for library, checks in by_library.items():
        spec = get_library(library, catalog_dir)
        side = copy.deepcopy(_sidecar(str(spaces_path(spec))))  # the cached one stays as read
        for rid, problems in checks.items():
            if rid not in side:
                missing.append(f"{library}/{rid}")
                continue
            side[rid].update(spaces.get(f"{library}/{rid}", {}))
            side[rid]["check"] = {"ok": not problems, "problems": list(problems)}
        if any(rid in side for rid in checks):
            write_text_atomic(spaces_path(spec), json.dumps(side, indent=1))
    _sidecar.cache_clear()
    return missing


SPEC_DEFAULTS = {
    f.name: f.default_factory() if f.default_factory is not MISSING else f.default
    for f in fields(LibrarySpec)
}


def spec_text(path: Path, data: dict[str, Any]) -> str:
    """The spec file with `data`'s values, editing the existing file in place so that a
    user's comments and layout survive a rediscovery (only changed keys are rewritten)."""
    doc = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    for key in [k for k in doc if k not in data]:
        del doc[key]
    current = doc.unwrap()
    for key, value in data.items():
        if current.get(key) == value or (key not in current and value == SPEC_DEFAULTS.get(key)):
            continue
        if isinstance(value, list) and value:
            array = tomlkit.array()
            array.extend(value)
            array.multiline(True)
            doc[key] = array
        else:
            doc[key] = value
    return tomlkit.dumps(doc)
