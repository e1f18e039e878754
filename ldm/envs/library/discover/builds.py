"""Discover's builds: the interpreter/pin variants tried in order until a library's venv
builds, its modules import and its envs run, and the record of what was tried.

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, replace

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.discover.arguments import NEEDS_ARGUMENTS, retry_with_documented_kwargs
from ldm.envs.library.discover.modules import candidate_ids, find_registering_modules
from ldm.envs.library.discover.requirements import (
    MAX_ADDED_DEPENDENCIES,
    missing_requirements,
    release_date,
    req_name,
)
from ldm.envs.library.discover.trials import (
    OnResult,
    retry_with_dependencies,
    retry_with_wrappers,
    try_all,
)
from ldm.envs.library.trial import EnvTrial
from ldm.envs.library.venvs import ensure_venv
from ldm.errors import EnvError, LDMError


@dataclass(frozen=True)
class BuildVariant:
    """One way to build a library's venv: an interpreter, extra pins, old build tools."""

    python: str | None
    pins: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    """Build requirements (pinned for every source build), e.g. an old setuptools."""
    installer: str | None = None
    when: str = ""
    """Only tried when an earlier try's error matches this regex (empty: always)."""
    as_of_release: bool = False
    """Resolve the dependencies as of the library's release (its newest ones break it)."""
    before: str = ""
    """The date that makes `as_of_release` concrete (set by build_and_try)."""

    def apply(self, spec: LibrarySpec) -> LibrarySpec:
        """The spec built this way (pins for a package the spec already constrains are skipped)."""
        named = {req_name(r) for r in spec.requirements}
        extra = [p for p in self.pins if req_name(p) not in named]
        return replace(
            spec,
            python=self.python or spec.python,
            requirements=[*spec.requirements, *extra],
            build_requirements=list(self.build) or spec.build_requirements,
            installer=self.installer or spec.installer,
            dependencies_before=self.before or spec.dependencies_before,
        )

    def describe(self, spec: LibrarySpec) -> str:
        built = self.apply(spec)
        pins = f" with {', '.join(self.pins + self.build)}" if self.pins or self.build else ""
        via = f" (installed by {self.installer})" if self.installer else ""
        when = f", dependencies released before {self.before}" if self.before else ""
        return f"Python {built.python or 'of ldm'}{pins}{via}{when}"


OLD_BUILD_TOOLS = ("setuptools<58", "wheel<0.38")
#: Errors of packages whose setup.py only the setuptools of their time accepts.
OLD_SETUP = r"extras_require|setup command|use_2to3|invalid requirement|InvalidRequirement"

#: Tried in order until the venv builds, the library imports and its envs run: the spec as
#: written, numpy 1.x (most libraries of the gym era break on numpy 2), the dependencies as of
#: the library's release (a newer dependency breaks it, e.g. dm-control 1.0.50 on mujoco 4),
#: old build tools (only
#: after a setup.py error), newer interpreters (packages that require them or ship wheels only
#: for them), then older ones down to gym 0.21's (pip 21 and setuptools 57 build it).
BUILD_VARIANTS = (
    BuildVariant(None),
    BuildVariant(None, ("numpy<2",)),
    BuildVariant(None, as_of_release=True),
    BuildVariant(None, ("numpy<2",), OLD_BUILD_TOOLS, when=OLD_SETUP),
    BuildVariant("3.12"),
    BuildVariant("3.13"),
    BuildVariant("3.10", ("numpy<2",)),
    BuildVariant("3.9", ("numpy<2", "gym==0.26.2")),
    BuildVariant(
        "3.8",
        ("numpy<1.24", "gym==0.21.0"),
        ("pip==21.3.1", "setuptools==57.5.0", "wheel==0.37.1"),
        installer="pip",
    ),
)


@dataclass
class Built:
    """A library built by one variant, with the outcome of trying its envs."""

    spec: LibrarySpec
    variant: BuildVariant
    passed: dict[str, EnvTrial]
    failed: dict[str, str]


#: Envs of a variant tried first, spread over its sorted ids: the hub's fixes (wrappers,
#: optional dependencies) are found on these, so that a library of thousands of ids is tried
#: in full once, not once per fix.
SAMPLE = 8


#: The fixes tried, in order, after a variant's first trials: optional dependencies a
#: failure names, declared wrappers, constructor arguments the library's examples give (the
#: envs still wanting arguments are named so; a wrapper retry after it would rename them).
#: Seeding the global generators is decided on the envs' checks (`checks.py`), not here.
FIXES = (
    retry_with_dependencies,
    retry_with_wrappers,
    retry_with_documented_kwargs,
)


@dataclass(frozen=True)
class Trial:
    """How envs are tried: per-env timeout, parallel workers, random steps, a progress bar,
    and who hears each outcome as it comes (the partial spec's writer)."""

    timeout: float
    workers: int
    steps: int
    progress: bool
    on_result: OnResult | None = None

    def fixed(
        self, spec: LibrarySpec, passed: dict[str, EnvTrial], failed: dict[str, str]
    ) -> tuple[LibrarySpec, dict[str, EnvTrial], dict[str, str]]:
        """The failures the hub fixes (`FIXES`), fixed and tried again."""
        for fix in FIXES:
            spec, passed, failed = fix(spec, passed, failed, self.timeout, self.workers, self.steps)
        return spec, passed, failed

    def variant(
        self, spec: LibrarySpec, variant: BuildVariant, ids: list[str], everything: bool
    ) -> tuple[Built, bool, int]:
        """Try a built variant's envs: a sample with the fixes first, then every id when the
        sample runs (or `everything`: the spec as written is judged on all its envs).
        Returns (the outcome, whether it runs, how many envs were tried)."""
        sample = ids[:: -(-len(ids) // SAMPLE)] if len(ids) > SAMPLE else ids
        args = (self.timeout, self.workers, self.steps)
        spec, passed, failed = self.fixed(
            spec, *try_all(spec, sample, *args, False, self.on_result)
        )
        runs = _runs(passed, failed)
        if (runs or everything) and len(sample) < len(ids):
            outcome = try_all(spec, ids, *args, self.progress, self.on_result)
            spec, passed, failed = self.fixed(spec, *outcome)
            runs = _runs(passed, failed)
        tried = len(ids) if everything or runs else len(sample)
        return Built(spec, variant, passed, failed), runs, tried


def _runs(passed: dict[str, EnvTrial], failed: dict[str, str]) -> bool:
    """Whether a build runs the library: an env passed, or every failure is one no other
    interpreter fixes (over the paper's limits, waiting for a user's constructor arguments)."""
    settled = ("over the limit", NEEDS_ARGUMENTS)
    return bool(passed) or all(any(s in why for s in settled) for why in failed.values())


def build_and_try(
    spec: LibrarySpec,
    timeout: float,
    workers: int,
    steps: int,
    progress: bool,
    on_result: OnResult | None = None,
) -> tuple[Built, list[str]]:
    """Try `BUILD_VARIANTS` in order until one builds, imports and runs envs: (it, the tries).

    Failures the hub fixes (missing optional dependencies, Dict observations, vector rewards)
    are fixed first; a variant that builds but still runs none of its envs (numpy 2 breaking
    an old library at `make`) counts as failed too, unless every failure is a limit of the
    paper's. Each variant is first tried on a sample of its envs (`SAMPLE`), then on all.
    """
    tries: list[str] = []
    fallback: Built | None = None
    floor = (3, 0)
    release: str | None = None
    for k, variant in enumerate(BUILD_VARIANTS):
        if variant.as_of_release:
            first = spec.requirements[0] if spec.requirements else ""
            release = release_date(first) if release is None else release
            if not release or spec.dependencies_before:
                continue  # no date known (a URL, a path) or the spec already sets one
            variant = replace(variant, before=release)
        if _python_of(variant.apply(spec)) < floor:
            continue  # the package said it needs a newer Python
        if variant.when and not re.search(variant.when, "\n".join(tries)):
            continue
        try:
            candidate, ids = _build_variant(spec, variant)
        except (LDMError, subprocess.TimeoutExpired) as e:
            lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
            tries.append(f"{variant.describe(spec)}: {' | '.join(lines[-3:])[:400]}")
            needs = re.search(r"Python>=(\d+)\.(\d+)", str(e))
            floor = max(floor, (int(needs[1]), int(needs[2]))) if needs else floor
            continue
        trial = Trial(timeout, workers, steps, progress, on_result)
        built, runs, tried = trial.variant(candidate, variant, ids, everything=k == 0)
        if runs:
            return built, tries
        fallback = fallback or built
        why = next(iter(built.failed.values()), "no env ids")
        tries.append(f"{variant.describe(spec)}: none of {tried} envs ran ({why[:300]})")
    if fallback is not None:
        return fallback, tries
    raise EnvError(
        f"library {spec.name!r} neither builds nor imports with any of "
        f"{len(BUILD_VARIANTS)} interpreter/pin variants:\n- " + "\n- ".join(tries)
    )


def _python_of(spec: LibrarySpec) -> tuple[int, int]:
    if spec.python:
        major, minor = spec.python.split(".")[:2]
        return int(major), int(minor)
    return sys.version_info[:2]


def _build_variant(spec: LibrarySpec, variant: BuildVariant) -> tuple[LibrarySpec, list[str]]:
    """Build one variant and find its env ids; modules the import reports missing are added
    as requirements and the build retried."""
    candidate = variant.apply(spec)
    for _ in range(MAX_ADDED_DEPENDENCIES):
        try:
            python = ensure_venv(candidate)
            if not spec.imports:
                candidate = find_registering_modules(candidate, python)
            return candidate, candidate_ids(candidate)
        except LDMError as e:
            missing = missing_requirements(str(e), candidate)
            if not missing:
                raise
            candidate = replace(candidate, requirements=[*candidate.requirements, *missing])
    raise EnvError(
        f"library {spec.name!r} still misses modules after adding {candidate.requirements}"
    )
