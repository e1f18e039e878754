"""Per-library virtual environments, built with `uv` from the library spec and cached.

Each library gets `$LDM_HOME/envs/<name>-<env_hash>` (LDM_HOME defaults to ~/.cache/ldm):
a changed spec (requirements, python, api) gets a new hash and so a new venv. A build runs
in a temporary directory and is renamed into place only when complete, under a file lock, so
a killed build is never mistaken for a finished one and two processes never build the same
venv at once. Imports no environment library and no torch.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ldm.envs.catalog import LibrarySpec
from ldm.errors import EnvError

READY = ".ldm-ready"


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


def venv_python(spec: LibrarySpec) -> Path:
    return venv_dir(spec) / "bin" / "python"


def is_built(spec: LibrarySpec) -> bool:
    return (venv_dir(spec) / READY).exists()


def ensure_venv(spec: LibrarySpec, quiet: bool = True) -> Path:
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
            _build(spec, tmp, quiet)
            (tmp / READY).write_text(spec.env_hash)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final / "bin" / "python"


def _build(spec: LibrarySpec, where: Path, quiet: bool) -> None:
    uv = uv_binary()
    python = find_python(spec.python) if spec.python else sys.executable
    _run([uv, "venv", "--quiet", "--python", python, str(where)], spec, "create the venv")
    requirements = list(spec.requirements)
    if not any(
        r.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip() == "numpy"
        for r in requirements
    ):
        requirements.append("numpy")
    flavour = "gymnasium" if spec.api == "gymnasium" else "gym"
    if not any(r.lower().startswith(flavour) for r in requirements):
        requirements.append(flavour)
    _run(
        [uv, "pip", "install", "--quiet", "--python", str(where / "bin" / "python"), *requirements],
        spec,
        "install its requirements",
    )


def find_python(version: str) -> str:
    """An interpreter of `version` on this machine (PATH, then pyenv); uv must not download one."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}*/bin/python{version}"), reverse=True):
        return str(candidate)  # pyenv's real interpreter, not its shim
    return (
        shutil.which(f"python{version}") or version
    )  # let uv look for it (it reports clearly when it cannot)


def _run(cmd: list[str], spec: LibrarySpec, what: str) -> None:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise EnvError(
            f"could not {what} for library {spec.name!r} (spec {spec.path}):\n{tail}\n"
            "Fix the spec's `requirements`/`python`, or mark it `installable = false` with a note."
        )


def remove_venv(spec: LibrarySpec) -> None:
    shutil.rmtree(venv_dir(spec), ignore_errors=True)
