"""`ldm envs discover`'s command: from a catalog name, a spec file or a PyPI requirement to a
written spec (build, find, try, fix, record; see the package's docstring for the steps).

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import datetime
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ldm.envs.library.catalog import LibrarySpec, catalog_write_dir, load_catalog, load_spec
from ldm.envs.library.discover.arguments import needs_arguments
from ldm.envs.library.discover.builds import BUILD_VARIANTS, build_and_try
from ldm.envs.library.discover.checks import checked
from ldm.envs.library.discover.hints import limit_hints
from ldm.envs.library.discover.modules import env_families
from ldm.envs.library.discover.partial import PartialSpec
from ldm.envs.library.discover.record import write_discovery
from ldm.envs.library.discover.requirements import (
    pin_installed,
    project_source,
    pypi_page,
    req_name,
)
from ldm.envs.library.trial import EnvTrial
from ldm.envs.library.venvs import ensure_venv


@dataclass
class DiscoverReport:
    """What discovery found for one library."""

    library: str
    spec_path: str
    passed: dict[str, EnvTrial] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    build: str = ""

    @property
    def flagged(self) -> list[str]:
        """Listed envs that fail their checks (`ldm envs check`'s)."""
        return sorted(rid for rid, t in self.passed.items() if t.problems)

    @property
    def families(self) -> int:
        """Distinct env classes among the envs that pass (variants of one class count once)."""
        return len({t.family or rid for rid, t in self.passed.items()})

    def summary(self) -> str:
        wanting = sorted(needs_arguments(self.failed))
        args = (
            f"; {len(wanting)} need a user's constructor arguments ({', '.join(wanting[:5])}: "
            "see `ldm envs list --failed`)"
            if wanting
            else ""
        )
        return (
            f"{self.library}: {len(self.passed)} envs pass in {self.families} families "
            f"({len(self.flagged)} flagged by their checks), {len(self.failed)} failed{args}, "
            f"{self.seconds:.0f} s, built on {self.build} -> {self.spec_path}"
        )


def _relocated(spec: LibrarySpec, target: Path) -> LibrarySpec:
    """A catalogued spec to be written into `target` (a user catalog overriding the built-in
    one); relative python_path entries keep pointing where they did."""
    old = Path(spec.path)
    if not spec.path or old.parent.resolve() == target.resolve():
        return spec
    paths = [
        p if Path(p).is_absolute() else str((old.parent / p).resolve()) for p in spec.python_path
    ]
    return replace(spec, python_path=paths, path=str(target / old.name))


def resolve_spec(spec_or_package: str, catalog_dir: str | None) -> LibrarySpec:
    """A catalog name, a spec file, or a PyPI package name (a new spec skeleton)."""
    if spec_or_package.endswith(".toml"):
        return load_spec(spec_or_package)
    target = catalog_write_dir(catalog_dir)
    catalog = {**load_catalog(), **(load_catalog(str(catalog_dir)) if catalog_dir else {})}
    if spec_or_package in catalog:
        return _relocated(catalog[spec_or_package], target)
    name = req_name(spec_or_package)
    path = target / f"{name}.toml"
    url = spec_or_package.partition("@")[2].strip()
    return LibrarySpec(
        name=name,
        domain="unknown",
        requirements=[spec_or_package],
        imports=[],  # found by the probe
        source=url or pypi_page(name),
        path=str(path),
    )


def discover_library(
    spec_or_package: str,
    catalog_dir: str | None = None,
    timeout: float = 60.0,
    workers: int = 2,
    steps: int = 5,
    progress: bool = True,
    domain: str | None = None,
) -> DiscoverReport:
    """Build, find, try and record every env of a library; returns what passed and failed.

    `spec_or_package`: a catalog name, a spec file or a PyPI requirement (a new spec is
    written to `catalog_dir`); `domain`: the field of application written in a new spec.
    """
    t0 = time.perf_counter()
    spec = resolve_spec(spec_or_package, catalog_dir)
    is_new = not Path(spec.path).exists()
    if domain:
        spec = replace(spec, domain=domain)
    partial = PartialSpec(spec)
    built, tries = build_and_try(spec, timeout, workers, steps, progress, partial)
    spec, passed, failed = built.spec, built.passed, built.failed
    failed = limit_hints(spec, failed, passed)
    passed = with_families(spec, passed)
    report = DiscoverReport(spec.name, spec.path, passed, failed)
    first = built.variant == BUILD_VARIANTS[0]
    report.build = "the spec as written" if first else built.variant.describe(spec)
    python = _python_version(spec)
    if is_new:
        spec = pin_installed(spec)  # a new package: record the versions that worked
        if spec.source == pypi_page(spec.name):  # its repository, where its metadata names one
            found = project_source(ensure_venv(spec), spec.requirements[0])
            spec = replace(spec, source=found or spec.source)
    # the recorded checks are `ldm envs check`'s, on the spec as it is written
    spec, passed = checked(spec, passed, timeout, workers, partial)
    report.passed = passed
    report.seconds = time.perf_counter() - t0
    discovery = {
        "seconds": round(report.seconds, 1),
        "date": datetime.date.today().isoformat(),
        "python": python,
        "build": report.build,
        **({"retried": tries} if tries else {}),
    }
    write_discovery(replace(spec, discovery=discovery), passed, failed)
    return report


def with_families(spec: LibrarySpec, passed: dict[str, EnvTrial]) -> dict[str, EnvTrial]:
    """The passed envs with their family (entry point class) where the library's registry
    tells it."""
    found = env_families(spec, sorted(passed))
    return {rid: replace(t, family=found.get(rid, t.family)) for rid, t in passed.items()}


def _python_version(spec: LibrarySpec) -> str:
    out = subprocess.run(
        [str(ensure_venv(spec)), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
