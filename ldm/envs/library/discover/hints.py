"""Discover's hints for envs over the paper's limits: registered smaller variants that pass
(`Grid8-v0` for `Grid16-v0`) and the constructor arguments that set the size (probed in the
library's venv).

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import re
import subprocess

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.discover.modules import probe
from ldm.envs.library.trial import EnvTrial
from ldm.envs.library.venvs import ensure_venv
from ldm.errors import LDMError


def limit_hints(
    spec: LibrarySpec,
    failed: dict[str, str],
    passed: dict[str, EnvTrial],
    probe_params: bool = True,
) -> dict[str, str]:
    """Failure reasons over the paper's limits, with the smaller variants that exist: registered
    siblings with smaller numbers in their names that pass, and the constructor's size knobs."""
    over = [rid for rid, why in failed.items() if "over the limit" in why]
    if not over:
        return failed
    knobs: dict[str, dict[str, int]] = {}
    if probe_params:
        try:
            knobs = probe(ensure_venv(spec), "params", spec.api, *spec.imports, "--", *over)
        except (LDMError, subprocess.TimeoutExpired):
            pass  # hints are a courtesy: the limit is named either way
    out = dict(failed)
    by_shape: dict[tuple[str, str], list[tuple[str, list[int]]]] = {}
    for p in sorted(passed):  # grouped once: a library may have thousands of each
        shape, nums, version = _split(p)
        by_shape.setdefault((shape, version), []).append((p, nums))
    for rid in over:
        hints = []
        shape, nums, version = _split(rid)
        siblings = [p for p, n in by_shape.get((shape, version), []) if _smaller(n, nums)]
        if siblings:
            hints.append(f"smaller registered variants pass: {', '.join(siblings[:3])}")
        sizes = knobs.get(rid) or {}
        if sizes:
            args = ", ".join(f"{k}={v}" for k, v in sorted(sizes.items())[:4])
            hints.append(
                f"its constructor sets the size with {args}: a smaller value in "
                f'env_kwargs."{rid}" may fit'
            )
        if hints:
            out[rid] = f"{failed[rid].split('; declare')[0]}; {'; '.join(hints)}"
    return out


def _split(rid: str) -> tuple[str, list[int], str]:
    """`Grid16x16-v0` -> ("Grid#x#", [16, 16], "0"): the name's shape, its numbers, its version
    (the version is not a size)."""
    base, _, version = rid.rpartition("-v") if re.search(r"-v\d+$", rid) else (rid, "", "")
    return re.sub(r"\d+", "#", base), [int(n) for n in re.findall(r"\d+", base)], version


def _smaller(nums_a: list[int], nums_b: list[int]) -> bool:
    """Numbers of a smaller variant: none larger, some smaller."""
    return bool(nums_a) and all(a <= b for a, b in zip(nums_a, nums_b)) and nums_a != nums_b
