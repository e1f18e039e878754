"""Env ids: `<library>/<registered id>` resolution, listing from the catalog, space lookup.

Listing never starts a worker: it reads each spec's `envs` (written by `ldm envs discover`)
and the sidecar `<name>.spaces.json` holding each env's SpaceSpecs.

Owns: `EnvInfo`, id resolution and the sidecar's path. Imports ldm.envs.library.catalog, spaces and
errors; must not import gymnasium, an environment library, the backends or torch (listing
is pure file reading).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ldm.envs.library.catalog import LibrarySpec, get_library, load_catalog
from ldm.errors import EnvError
from ldm.spaces import SpaceSpec


@dataclass(frozen=True)
class EnvInfo:
    """One catalogued env: qualified id, library, spaces (as seen after its wrappers) and the
    result of its checks when discovery recorded one (None: never checked)."""

    id: str
    library: str
    observation: SpaceSpec | None
    action: SpaceSpec | None
    problems: tuple[str, ...] | None = None
    """What the env's own checks found (empty: passed; None: not checked)."""
    family: str = ""
    """The env's class (`module:Qualname`) where discovery recorded it, else its id without
    version and numbers (`Grid#x#`): registered variants of one env count as one family."""

    @property
    def checked(self) -> bool:
        return self.problems is not None

    @property
    def check_ok(self) -> bool:
        return self.problems == ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "library": self.library,
            "observation": self.observation.to_dict() if self.observation else None,
            "action": self.action.to_dict() if self.action else None,
            "check": None
            if self.problems is None
            else {"ok": not self.problems, "problems": list(self.problems)},
            "family": self.family,
        }


@dataclass(frozen=True)
class FailedEnv:
    """A registered id that discovery could not take, with the reason it recorded."""

    id: str
    library: str
    reason: str


def spaces_path(spec: LibrarySpec) -> Path:
    return Path(spec.path).with_suffix(".spaces.json")


@cache
def _sidecar(path: str) -> dict[str, Any]:
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else {}


def list_envs(library: str | None = None, catalog_dir: str | None = None) -> list[EnvInfo]:
    """Every discovered env of the catalog (or of one library), with its SpaceSpecs."""
    specs = [get_library(library, catalog_dir)] if library else load_catalog(catalog_dir).values()
    out = []
    for spec in specs:
        side = _sidecar(str(spaces_path(spec))) if spec.path else {}
        for rid in spec.envs:
            s = side.get(rid, {})
            obs = SpaceSpec.from_dict(s["observation"]) if "observation" in s else None
            act = SpaceSpec.from_dict(s["action"]) if "action" in s else None
            check = s.get("check")
            problems = tuple(check["problems"]) if check is not None else None
            family = s.get("family") or name_family(rid)
            out.append(EnvInfo(f"{spec.name}/{rid}", spec.name, obs, act, problems, family))
    return out


def name_family(registered_id: str) -> str:
    """A family read from an id alone (`Foraging-8x8-2p-v3` -> `Foraging-#x#-#p`), for envs
    discovered before families were recorded."""
    base = re.sub(r"-v\d+$", "", registered_id.split("/")[-1])
    return re.sub(r"\d+", "#", base)


def list_failed(library: str | None = None, catalog_dir: str | None = None) -> list[FailedEnv]:
    """Every registered id discovery could not take (or of one library), with its reason."""
    specs = [get_library(library, catalog_dir)] if library else load_catalog(catalog_dir).values()
    return [
        FailedEnv(f"{spec.name}/{rid}", spec.name, why)
        for spec in specs
        for rid, why in sorted(spec.failed.items())
    ]


def resolve_env_id(env_id: str, catalog_dir: str | None = None) -> tuple[LibrarySpec, str]:
    """`<library>/<registered id>` (or a bare id known to exactly one library) -> (spec, id)."""
    catalog = load_catalog(catalog_dir)
    head, _, rest = env_id.partition("/")
    if rest and head in catalog:
        spec = catalog[head]
        if spec.envs and rest not in spec.envs and not spec.wants(rest):
            raise EnvError(_unknown(env_id, [f"{head}/{e}" for e in spec.envs]))
        return spec, rest
    owners = [s for s in catalog.values() if env_id in s.envs]
    if len(owners) == 1:
        return owners[0], env_id
    if len(owners) > 1:
        names = [f"{s.name}/{env_id}" for s in owners]
        raise EnvError(f"env id {env_id!r} is registered by several libraries; qualify it: {names}")
    everything = [f"{s.name}/{e}" for s in catalog.values() for e in s.envs]
    raise EnvError(_unknown(env_id, everything + [e.split("/", 1)[1] for e in everything]))


def _unknown(env_id: str, known: list[str]) -> str:
    close = difflib.get_close_matches(env_id, known, n=5, cutoff=0.5)
    hint = f" Close matches: {close}" if close else " See `ldm envs list`."
    return f"unknown env id {env_id!r}.{hint}"


def close_env_ids(env_id: str, n: int = 5, catalog_dir: str | None = None) -> list[str]:
    """The catalogued env ids closest to `env_id` (a typo, a deprecated version, an id the
    library cannot make, an unqualified id), best first; never `env_id` itself. An id is
    compared whole and by its registered part, so `CartPole-v1` finds every library's."""
    catalog = load_catalog(catalog_dir)
    head, _, rest = env_id.partition("/")
    bare = rest if rest and head in catalog else env_id

    def likeness(known: str) -> float:
        whole = difflib.SequenceMatcher(None, env_id, known).ratio()
        part = difflib.SequenceMatcher(None, bare, known.partition("/")[2]).ratio()
        return max(whole, part)

    ranked = sorted(
        ((likeness(k), k) for s in catalog.values() for k in (f"{s.name}/{e}" for e in s.envs)),
        key=lambda x: -x[0],
    )
    return [k for score, k in ranked if score >= 0.6 and k != env_id][:n]


def catalog_spaces(env_id: str) -> tuple[SpaceSpec, SpaceSpec] | None:
    """SpaceSpecs of an env from the catalog's sidecar, if discovery recorded them."""
    spec, rid = resolve_env_id(env_id)
    s = _sidecar(str(spaces_path(spec))).get(rid)
    if not s:
        return None
    return SpaceSpec.from_dict(s["observation"]), SpaceSpec.from_dict(s["action"])
