"""Per-library virtual environments, built from the library spec and cached.

Each library gets `$LDM_HOME/envs/<name>-<env_hash>` (LDM_HOME defaults to ~/.cache/ldm):
a changed spec (requirements, python, installer, build pins, git source) gets a new hash and
so a new venv. A build runs in a temporary directory and is renamed into place only when
complete, under a file lock, so a killed build is never mistaken for a finished one and two
processes never build the same venv at once.

A build: pick the interpreter (the spec's `python` from pyenv/PATH, else one uv installs;
default: ldm's own), create the venv with the spec's installer (uv, or the stdlib venv + pip
for what uv cannot install), install `build_requirements` first (also pinned for every sdist
build), fetch a `[git]` source (ldm/envs/library/sources.py) and install it or put it on the path,
then the requirements. `ldm-venv.json` in the venv records what was used.
Imports no environment library and no torch.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.sources import fetch
from ldm.errors import EnvError

READY = ".ldm-ready"
#: JSON beside READY: interpreter, installer, where a git source came from, build seconds
RECORD = "ldm-venv.json"


def ldm_home() -> Path:
    """Root of ldm's caches (`$LDM_HOME`, default ~/.cache/ldm)."""
    return Path(os.environ.get("LDM_HOME", Path.home() / ".cache" / "ldm"))


def uv_binary() -> str:
    """The `uv` executable: beside the running interpreter (installed with ldm) or on PATH."""
    candidate = Path(sys.executable).parent / "uv"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("uv")
    if not found:
        raise EnvError("the `uv` executable is missing; install it with `pip install uv`")
    return found


def venv_dir(spec: LibrarySpec) -> Path:
    return ldm_home() / "envs" / f"{spec.name}-{spec.env_hash}"


def ensure_venv(spec: LibrarySpec) -> Path:
    """Build (or reuse) the library's venv and return its Python interpreter."""
    if not spec.installable:
        raise EnvError(
            f"library {spec.name!r} is marked not installable on this platform: {spec.note or 'see its spec'}"
        )
    final = venv_dir(spec)
    if (final / READY).exists():
        return final / "bin" / "python"
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / READY).exists():  # built by another process while we waited
            return final / "bin" / "python"
        tmp = final.parent / f".{final.name}.build-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)  # a half-built leftover without READY
        try:
            started = time.monotonic()
            record = _build(spec, tmp)
            record["build_seconds"] = round(time.monotonic() - started, 1)
            (tmp / RECORD).write_text(json.dumps(record, indent=1))
            (tmp / READY).write_text(spec.env_hash)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final / "bin" / "python"


def venv_record(spec: LibrarySpec) -> dict[str, Any] | None:
    """How the library's venv was built (interpreter, installer, source, seconds), if it is."""
    path = venv_dir(spec) / RECORD
    if not (venv_dir(spec) / READY).exists() or not path.exists():
        return None
    return json.loads(path.read_text())


class Installer(NamedTuple):
    """How one installer creates a venv and installs into it (see catalog.INSTALLERS)."""

    create: Callable[[str, Path], list[str]]
    """(interpreter, venv dir) -> command creating the venv."""
    install: Callable[[Path, list[str], Path | None], list[str]]
    """(venv dir, requirements, build-constraints file or None) -> install command."""
    env: Callable[[Path | None], dict[str, str]]
    """Extra environment for the install command, given the build-constraints file."""


INSTALLERS: dict[str, Installer] = {
    "uv": Installer(
        create=lambda py, where: [uv_binary(), "venv", "--quiet", "--python", py, str(where)],
        install=lambda where, reqs, constraints: [
            uv_binary(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(where / "bin" / "python"),
            *(["--build-constraint", str(constraints)] if constraints else []),
            *reqs,
        ],
        env=lambda constraints: {},
    ),
    # the stdlib's venv works on every Python (uv cannot make 3.6 venvs); pip honours
    # PIP_CONSTRAINT inside its isolated build environments too
    "pip": Installer(
        create=lambda py, where: [py, "-m", "venv", str(where)],
        install=lambda where, reqs, constraints: [
            str(where / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            *reqs,
        ],
        env=lambda constraints: {"PIP_CONSTRAINT": str(constraints)} if constraints else {},
    ),
}


def _build(spec: LibrarySpec, where: Path) -> dict[str, Any]:
    """Create the venv at `where` and install the spec into it; returns the build record."""
    installer = INSTALLERS[spec.installer]
    python = resolve_python(spec)
    _run(installer.create(python, where), spec, "create the venv")
    constraints = None
    if spec.build_requirements:
        constraints = where / "ldm-build-constraints.txt"
        constraints.write_text("\n".join(spec.build_requirements) + "\n")
        _run(
            installer.install(where, list(spec.build_requirements), None),
            spec,
            "install its build requirements",
        )
    requirements = _with_defaults(spec)
    if spec.dependencies_before:  # uv only (the spec checks): what was released before then
        requirements = ["--exclude-newer", spec.dependencies_before, *requirements]
    origin = None
    if spec.git is not None:
        src = where / "src" / spec.git.repo
        src.parent.mkdir(parents=True, exist_ok=True)
        origin = fetch(spec.git, src, spec.name)
        if spec.git.install == "package":
            requirements.append(str(src))
        else:
            _add_to_path(where, src, spec)
    _run(
        installer.install(where, requirements, constraints),
        spec,
        "install its requirements",
        installer.env(constraints),
    )
    return {
        "library": spec.name,
        "env_hash": spec.env_hash,
        "python": python,
        "python_version": _python_version(where / "bin" / "python", spec),
        "installer": spec.installer,
        "source": origin,
    }


def _with_defaults(spec: LibrarySpec) -> list[str]:
    requirements = list(spec.requirements)
    if not any(
        r.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip() == "numpy"
        for r in requirements
    ):
        requirements.append("numpy")
    flavour = "gymnasium" if spec.api == "gymnasium" else "gym"
    if not any(r.lower().startswith(flavour) for r in requirements):
        requirements.append(flavour)
    return requirements


def _add_to_path(where: Path, src: Path, spec: LibrarySpec) -> None:
    # a .pth line relative to site-packages, so the venv still works after its rename
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_output([str(where / "bin" / "python"), "-c", code], spec, "locate site-packages"))
    site.mkdir(parents=True, exist_ok=True)
    (site / f"ldm-source-{spec.name}.pth").write_text(os.path.relpath(src, site) + "\n")


def _python_version(python: Path, spec: LibrarySpec) -> str:
    code = "import sys; print(sys.version.split()[0])"
    return _output([str(python), "-c", code], spec, "run its interpreter")


def resolve_python(spec: LibrarySpec) -> str:
    """The interpreter for a spec: ldm's own, one of this machine's, or one uv installs."""
    if not spec.python:
        return sys.executable
    local = find_python(spec.python)
    if local:
        return local
    uv = uv_binary()
    allow = {"UV_PYTHON_DOWNLOADS": "automatic"}
    _run(
        [uv, "python", "install", "--quiet", spec.python], spec, f"get Python {spec.python}", allow
    )
    return _output([uv, "python", "find", spec.python], spec, f"find Python {spec.python}")


def find_python(version: str) -> str | None:
    """An interpreter of `version` on this machine (pyenv, then PATH), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    matches = [
        d
        for d in pyenv.glob(f"{version}*")
        if (d.name == version or d.name.startswith(f"{version}."))
        and (d / "bin" / f"python{version}").exists()
    ]
    if matches:  # pyenv's real interpreter (the newest patch release), not its shim
        best = max(matches, key=lambda d: [int(x) for x in d.name.split(".") if x.isdigit()])
        return str(best / "bin" / f"python{version}")
    return shutil.which(f"python{version}")


def _output(cmd: list[str], spec: LibrarySpec, what: str) -> str:
    proc = _run(cmd, spec, what)
    return proc.stdout.strip().splitlines()[-1]


def _run(
    cmd: list[str], spec: LibrarySpec, what: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    # uv must not download an interpreter behind the spec's back (resolve_python decides)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", **(extra_env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise EnvError(
            f"could not {what} for library {spec.name!r} (spec {spec.path}):\n{tail}\n"
            "Fix the spec's `requirements`/`python`/`build_requirements`/`installer`, or mark "
            "it `installable = false` with a note."
        )
    return proc
