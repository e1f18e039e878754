"""`ldm envs discover`: automated integration of a library.

From a PyPI package name (or a catalog spec) to a working spec, without hand edits where the
hub can do the work:
1. build the library's venv; when the build or the import fails on the current Python, retry
   with older interpreters and pins (`BUILD_VARIANTS`) and record which one worked;
2. find the modules that register its envs (`probe.py`: entry points, top-level packages,
   `<pkg>.envs`/`<pkg>.gym`..., submodules calling `register(`) and which API (gym or
   gymnasium) they register with;
3. find the env ids they register (the registry after the imports minus the one before);
4. try each id in workers (`trial.py`: make, limits, reset, steps, the env's own checks);
5. write the spec's `envs` / `failed` (each failure keeps its reason; a failure over the
   paper's limits names the limit and any smaller variant), its `discovery` record, and the
   `<name>.spaces.json` sidecar (SpaceSpecs and check result per env) that `ldm envs list`
   reads.

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import datetime
import json
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomlkit

from ldm.atomic import write_text_atomic
from ldm.envs.backends import Connection, connect, init_message
from ldm.envs.catalog import LibrarySpec, catalog_write_dir, load_catalog, load_spec
from ldm.envs.registry import _sidecar, spaces_path
from ldm.envs.trial import EnvTrial, try_env
from ldm.envs.venvs import ensure_venv, uv_binary
from ldm.errors import EnvError, LDMError

PROBE = Path(__file__).with_name("probe.py")


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

    def apply(self, spec: LibrarySpec) -> LibrarySpec:
        """The spec built this way (pins for a package the spec already constrains are skipped)."""
        named = {_req_name(r) for r in spec.requirements}
        extra = [p for p in self.pins if _req_name(p) not in named]
        return replace(
            spec,
            python=self.python or spec.python,
            requirements=[*spec.requirements, *extra],
            build_requirements=list(self.build) or spec.build_requirements,
            installer=self.installer or spec.installer,
        )

    def describe(self, spec: LibrarySpec) -> str:
        built = self.apply(spec)
        pins = f" with {', '.join(self.pins + self.build)}" if self.pins or self.build else ""
        via = f" (installed by {self.installer})" if self.installer else ""
        return f"Python {built.python or 'of ldm'}{pins}{via}"


OLD_BUILD_TOOLS = ("setuptools<58", "wheel<0.38")
#: Errors of packages whose setup.py only the setuptools of their time accepts.
OLD_SETUP = r"extras_require|setup command|use_2to3|invalid requirement|InvalidRequirement"

#: Tried in order until the venv builds, the library imports and its envs run: the spec as
#: written, numpy 1.x (most libraries of the gym era break on numpy 2), old build tools (only
#: after a setup.py error), newer interpreters (packages that require them or ship wheels only
#: for them), then older ones down to gym 0.21's (pip 21 and setuptools 57 build it).
BUILD_VARIANTS = (
    BuildVariant(None),
    BuildVariant(None, ("numpy<2",)),
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


#: Failures the hub fixes itself with a declared wrapper: (reason pattern, wrapper). Discovery
#: adds the wrapper to the spec and tries the envs that failed that way again.
AUTO_WRAPPERS = (
    (re.compile(r"^observation space .*\((Dict|Tuple)\) is not supported"), "flatten_dict"),
    (
        re.compile(r"failed on 'step': TypeError: only (0-dimensional|length-1) arrays"),
        "sum_reward",
    ),
)


#: Failures that name a missing optional dependency: (reason pattern, group 1 -> requirement).
#: Discovery adds the requirements to the spec, rebuilds the venv and tries those envs again.
MISSING_DEPENDENCY = (
    (re.compile(r"pip install [\"'`]?([A-Za-z0-9_.\-]+(?:\[[A-Za-z0-9_,\-]+\])?)"), str),
    (
        re.compile(r"No module named '([A-Za-z0-9_]+)"),
        lambda m: MODULE_DIST.get(m, m.replace("_", "-")),
    ),
)
STDLIB = frozenset(sys.stdlib_module_names)
#: Import names whose distribution is named otherwise.
MODULE_DIST = {
    "yaml": "pyyaml",
    "cv2": "opencv-python-headless",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "Box2D": "box2d",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "torch": "torch==2.13.0",  # the CPU wheel on PyPI; an unpinned torch may pull CUDA builds
}
#: Seconds a library's first import may take in a worker (numba/jax/torch compile on import).
IMPORT_TIMEOUT = 600.0
MAX_ADDED_DEPENDENCIES = 6


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
        """Listed envs that fail their own checks."""
        return sorted(rid for rid, t in self.passed.items() if not t.ok)

    def summary(self) -> str:
        return (
            f"{self.library}: {len(self.passed)} envs pass ({len(self.flagged)} flagged by their "
            f"checks), {len(self.failed)} failed, {self.seconds:.0f} s, built on {self.build} "
            f"-> {self.spec_path}"
        )


def _req_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


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
    name = _req_name(spec_or_package)
    path = target / f"{name}.toml"
    url = spec_or_package.partition("@")[2].strip()
    return LibrarySpec(
        name=name,
        domain="unknown",
        requirements=[spec_or_package],
        imports=[],  # found by the probe
        source=url or f"https://pypi.org/project/{name}/",
        path=str(path),
    )


# -- build and find the registering modules --------------------------------------------------
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
    dist = _req_name(spec.requirements[0]) if spec.requirements else spec.name
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


@dataclass
class Built:
    """A library built by one variant, with the outcome of trying its envs."""

    spec: LibrarySpec
    variant: BuildVariant
    passed: dict[str, EnvTrial]
    failed: dict[str, str]


def build_and_try(
    spec: LibrarySpec, timeout: float, workers: int, steps: int, progress: bool
) -> tuple[Built, list[str]]:
    """Try `BUILD_VARIANTS` in order until one builds, imports and runs envs: (it, the tries).

    Failures the hub fixes (missing optional dependencies, Dict observations, vector rewards)
    are fixed first; a variant that builds but still runs none of its envs (numpy 2 breaking
    an old library at `make`) counts as failed too, unless every failure is a limit of the
    paper's. Later variants are first tried on a few envs, then on all when those run.
    """
    tries: list[str] = []
    fallback: Built | None = None
    floor = (3, 0)
    for k, variant in enumerate(BUILD_VARIANTS):
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
        sample = ids if k == 0 else ids[:4]
        passed, failed = try_all(candidate, sample, timeout, workers, steps, progress and k == 0)
        for fix in (retry_with_dependencies, retry_with_wrappers):
            candidate, passed, failed = fix(candidate, passed, failed, timeout, workers, steps)
        runs = bool(passed) or all("over the limit" in why for why in failed.values())
        if runs and sample is not ids:
            passed, failed = try_all(candidate, ids, timeout, workers, steps, progress)
        built = Built(candidate, variant, passed, failed)
        if runs:
            return built, tries
        fallback = fallback or built
        why = next(iter(failed.values()), "no env ids")
        tries.append(f"{variant.describe(spec)}: none of {len(sample)} envs ran ({why[:300]})")
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


def missing_requirements(text: str, spec: LibrarySpec) -> list[str]:
    """Requirements a failure names as missing (`pip install X`, `No module named 'x'`)."""
    named = {_req_name(r) for r in spec.requirements}
    out: list[str] = []
    for pattern, to_req in MISSING_DEPENDENCY:
        for found in pattern.findall(text):
            if found in STDLIB:
                continue  # e.g. distutils, gone from Python 3.12: the interpreter is the problem
            req = to_req(found)
            new = "[" in req and req not in spec.requirements or _req_name(req) not in named
            itself = _req_name(req) == spec.name and "[" not in req  # its extras are fine
            if new and not itself and req not in out:
                out.append(req)
    return out


def candidate_ids(spec: LibrarySpec, backend: str = "process") -> list[str]:
    """Env ids the library registers that pass its include/exclude patterns."""
    conn = connect(backend, replace(spec, imports=[]), f"{spec.name}[discover]")
    try:
        before = set(conn.call({"cmd": "list_ids"}))
        conn.call(init_message(spec), IMPORT_TIMEOUT)
        after = set(conn.call({"cmd": "list_ids"}))
    finally:
        conn.close()
    # a library's envs are what its imports add; the specs of gym/gymnasium's own families
    # (imports none or only the API module) take every registered id their patterns allow
    own = set(spec.imports) <= {"gymnasium", "gym"}
    new = after if own else after - before
    return sorted(rid for rid in new if spec.wants(rid))


def pin_installed(spec: LibrarySpec) -> LibrarySpec:
    """Bare requirement names pinned to the versions the venv resolved (reproducible specs)."""
    out = subprocess.run(
        [uv_binary(), "pip", "freeze", "--python", str(ensure_venv(spec))],
        capture_output=True,
        text=True,
    ).stdout
    versions = {}
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            versions[_req_name(name)] = version.strip()
    flavour = "gymnasium" if spec.api == "gymnasium" else "gym"
    reqs = list(spec.requirements)
    if flavour in versions and flavour not in {_req_name(r) for r in reqs}:
        reqs.append(flavour)
    pinned = [
        f"{r}=={versions[_req_name(r)]}"
        if re.fullmatch(r"[A-Za-z0-9_.\-]+", r) and _req_name(r) in versions
        else r
        for r in reqs
    ]
    return replace(spec, requirements=pinned)


# -- trying envs -----------------------------------------------------------------------------
def try_all(
    spec: LibrarySpec, ids: list[str], timeout: float, workers: int, steps: int, progress: bool
) -> tuple[dict[str, EnvTrial], dict[str, str]]:
    """Try every id in `workers` parallel workers (a crashed worker is replaced)."""
    from tqdm import tqdm

    todo: queue.Queue[str] = queue.Queue()
    for rid in ids:
        todo.put(rid)
    passed: dict[str, EnvTrial] = {}
    failed: dict[str, str] = {}
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
                    label = f"{spec.name}[discover {k}]"
                    conn = connect("process", spec, label, init_timeout=IMPORT_TIMEOUT)
                result: EnvTrial | str = try_env(conn, spec, rid, timeout, steps)
            except LDMError as e:  # without the worker's label: reasons stay stable across runs
                result = re.sub(r"^\S+\[discover \d+\]: ", "", str(e).splitlines()[0])[:400]
            except Exception as e:  # a library bug is a finding about that env
                result = f"{type(e).__name__}: {e}"[:400]
            with lock:
                if isinstance(result, EnvTrial):
                    passed[rid] = result
                else:
                    failed[rid] = result
                bar.update()
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    return passed, failed


def retry_with_dependencies(
    spec: LibrarySpec,
    passed: dict[str, EnvTrial],
    failed: dict[str, str],
    timeout: float,
    workers: int,
    steps: int,
) -> tuple[LibrarySpec, dict[str, EnvTrial], dict[str, str]]:
    """Install the optional dependencies that failures name and try those envs again."""
    wanted: dict[str, list[str]] = {}
    for rid, why in failed.items():
        for req in missing_requirements(why, spec):
            wanted.setdefault(req, []).append(rid)
    if not wanted:
        return spec, passed, failed
    extra = sorted(wanted, key=lambda r: -len(wanted[r]))[:MAX_ADDED_DEPENDENCIES]
    bigger = replace(spec, requirements=[*spec.requirements, *extra])
    try:
        ensure_venv(bigger)
    except LDMError:
        return spec, passed, failed  # the dependency does not install: the reasons stand
    retry = sorted({rid for r in extra for rid in wanted[r]})
    again, still = try_all(bigger, retry, timeout, workers, steps, progress=False)
    if not again:
        return spec, passed, failed
    return (
        bigger,
        {**passed, **again},
        {**{k: v for k, v in failed.items() if k not in retry}, **still},
    )


def retry_with_wrappers(
    spec: LibrarySpec,
    passed: dict[str, EnvTrial],
    failed: dict[str, str],
    timeout: float,
    workers: int,
    steps: int,
) -> tuple[LibrarySpec, dict[str, EnvTrial], dict[str, str]]:
    """Add the declared wrappers that fix failures (`AUTO_WRAPPERS`) and retry those envs."""
    add = [
        w
        for pattern, w in AUTO_WRAPPERS
        if w not in spec.wrappers and any(pattern.search(why) for why in failed.values())
    ]
    if not add:
        return spec, passed, failed
    spec = replace(spec, wrappers=[*spec.wrappers, *add])
    again, still = try_all(spec, sorted(failed), timeout, workers, steps, progress=False)
    return spec, {**passed, **again}, still


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
    for rid in over:
        hints = []
        siblings = [p for p in sorted(passed) if _smaller_variant(p, rid)]
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


def _smaller_variant(candidate: str, rid: str) -> bool:
    """`Grid8-v0` for `Grid16-v0`: same name but smaller numbers (the version is not a size)."""

    def split(i: str) -> tuple[str, list[int], str]:
        base, _, version = i.rpartition("-v") if re.search(r"-v\d+$", i) else (i, "", "")
        return re.sub(r"\d+", "#", base), [int(n) for n in re.findall(r"\d+", base)], version

    (shape_a, nums_a, ver_a), (shape_b, nums_b, ver_b) = split(candidate), split(rid)
    return (
        shape_a == shape_b
        and ver_a == ver_b
        and bool(nums_a)
        and all(a <= b for a, b in zip(nums_a, nums_b))
        and nums_a != nums_b
    )


# -- the command -----------------------------------------------------------------------------
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
    built, tries = build_and_try(spec, timeout, workers, steps, progress)
    spec, passed, failed = built.spec, built.passed, built.failed
    failed = limit_hints(spec, failed, passed)
    report = DiscoverReport(spec.name, spec.path, passed, failed)
    first = built.variant == BUILD_VARIANTS[0]
    report.build = "the spec as written" if first else built.variant.describe(spec)
    python = _python_version(spec)
    if is_new:
        spec = pin_installed(spec)  # a new package: record the versions that worked
    report.seconds = time.perf_counter() - t0
    discovery = {
        "seconds": round(report.seconds, 1),
        "date": datetime.date.today().isoformat(),
        "python": python,
        "build": report.build,
        **({"retried": tries} if tries else {}),
    }
    write_discovery(replace(spec, discovery=discovery), report)
    return report


def _python_version(spec: LibrarySpec) -> str:
    out = subprocess.run(
        [str(ensure_venv(spec)), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def write_discovery(spec: LibrarySpec, report: DiscoverReport) -> None:
    """Write the spec's envs/failed/discovery and its spaces sidecar (temp file + rename)."""
    updated = replace(spec, envs=sorted(report.passed), failed=dict(sorted(report.failed.items())))
    path = Path(spec.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, spec_text(path, updated.to_toml_dict()))
    side = {rid: report.passed[rid].to_sidecar() for rid in sorted(report.passed)}
    write_text_atomic(spaces_path(updated), json.dumps(side, indent=1))
    load_catalog.cache_clear()
    _sidecar.cache_clear()


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
