"""Sandbox for untrusted environment code: the worker under bubblewrap, with resource limits.

A sandboxed worker has no network (its own empty network namespace), sees the filesystem
read-only except its own scratch directory (a size-limited tmpfs, gone with the sandbox) and
small /tmp and /dev/shm tmpfs, does not see the user's home nor the project it is
started from (stores, runs; only the library's venv, the worker's code and the Python
installation it links to are re-exposed, read-only), runs in its own PID
namespace and dies with its client. Its environment variables are those of
ldm.envs.transport.workerenv (an allowlist). Limits: address space (RLIMIT_AS), CPU seconds
(RLIMIT_CPU), open files (RLIMIT_NOFILE), processes (a pids cgroup where the machine
offers one, else RLIMIT_NPROC), scratch size (`$LDM_SANDBOX_SCRATCH_MB`). Where bubblewrap is missing, asking for the sandbox is an
error, never a silent fallback.

`launch` is the "sandbox" launcher of ldm.envs.transport.process (named in its `LAUNCHERS` table).
Imports the standard library, ldm.envs.transport.connection, catalog and venvs; must not import gymnasium,
an environment library, torch or any later part (data, refgen, model, ...).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.transport.connection import WORKER_SCRIPT
from ldm.errors import EnvError

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of an isolated worker: the bubblewrap sandbox's, and the Docker
    backend's (ldm/envs/transport/docker.py `limit_args`), one table for both."""

    memory_mb: int = 4096
    """Address space of the worker, in MiB."""
    cpu_seconds: int = 3600
    """CPU time before the kernel stops the worker."""
    open_files: int = 256
    """Open file descriptors."""
    processes: int = 64
    """Processes and threads of the worker's sandbox."""
    scratch_mb: int = 512
    """Size of the worker's scratch directory (a tmpfs: it counts against the machine's
    memory, not the worker's address space); `$LDM_SANDBOX_SCRATCH_MB` overrides it."""
    tmp_mb: int = 64
    """Size of each of /tmp and /dev/shm (tmpfs) inside the sandbox."""

    def describe(self, docker: bool = False) -> str:
        """The limits for error messages; what the sandbox blocks first unless `docker` (the
        container backend applies the same table, its scratch being /tmp)."""
        numbers = (
            f"limits {self.memory_mb} MiB / {self.cpu_seconds} s CPU / {self.open_files} files "
            f"/ {self.processes} processes / scratch {self.scratch_mb} MiB (raise with "
            f"{SCRATCH_ENV}=...)"
        )
        if docker:
            return numbers
        return (
            "sandbox: no network, filesystem read-only except the worker's scratch dir, home "
            f"hidden, {numbers}, /tmp and /dev/shm {self.tmp_mb} MiB each"
        )


SCRATCH_ENV = "LDM_SANDBOX_SCRATCH_MB"


def limits() -> SandboxLimits:
    """The limits in force: the defaults, with the scratch size from `$LDM_SANDBOX_SCRATCH_MB`."""
    raw = os.environ.get(SCRATCH_ENV)
    if raw is None:
        return SandboxLimits()
    if not raw.isdigit() or int(raw) < 1:
        raise EnvError(f"${SCRATCH_ENV} is {raw!r}; write a whole number of MiB >= 1, e.g. 2048")
    return SandboxLimits(scratch_mb=int(raw))


LIMITS = SandboxLimits()


def bwrap() -> str:
    path = shutil.which("bwrap")
    if not path:
        raise EnvError(
            "the sandbox needs bubblewrap, which is not installed: `apt-get install bubblewrap` "
            "(or run without --sandbox)"
        )
    return path


def _pids_cgroup(limits: SandboxLimits) -> Path | None:
    """A fresh pids cgroup (v1 or v2) limited to `limits.processes`, or None if unavailable."""
    for base, ctl in (
        (CGROUP_ROOT / "pids", "pids.max"),
        (CGROUP_ROOT / "unified", "pids.max"),
        (CGROUP_ROOT, "pids.max"),
    ):
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            continue
        for stale in base.glob("ldm-sandbox-*"):
            if _left_over(stale):
                try:
                    stale.rmdir()  # only an empty group goes: its workers have finished
                except OSError:
                    pass
        group = base / f"ldm-sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            group.mkdir()
            (group / ctl).write_text(str(limits.processes))
            return group
        except OSError:
            if group.exists():
                group.rmdir()
    return None


#: an empty group older than this is left over even if its client lives (a client's new group
#: is empty from its creation until its worker's shell joins it, which a loaded machine delays)
STALE_GROUP_SECONDS = 600.0


def _left_over(group: Path) -> bool:
    """Whether a sandbox's pids cgroup may be removed (when empty): its client (the pid in its
    name) is gone, or it is older than STALE_GROUP_SECONDS. A group of a live client may be
    one whose worker has not joined it yet: it is kept."""
    try:
        os.kill(int(group.name.split("-")[2]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, IndexError, PermissionError):  # a name without a pid, or not ours
        pass
    try:
        return time.time() - group.stat().st_mtime > STALE_GROUP_SECONDS
    except OSError:
        return False


def hidden_dirs() -> list[Path]:
    """Directories a sandboxed worker sees as empty: the current directory (the project, with
    its stores and runs) and those listed in $LDM_SANDBOX_HIDE (':'-separated)."""
    dirs = [Path.cwd(), *(Path(p) for p in os.environ.get("LDM_SANDBOX_HIDE", "").split(":") if p)]
    keep = {Path("/"), Path(sys.prefix), Path(sys.base_prefix)}
    return [d.resolve() for d in dirs if d.is_dir() and d.resolve() not in keep]


def _sized_tmpfs(path: str | Path, mb: int) -> list[str]:
    return ["--size", str(mb * 1024 * 1024), "--tmpfs", str(path)]


def wrap_command(
    argv: list[str], scratch: Path, spec: LibrarySpec, limits: SandboxLimits = LIMITS
) -> list[str]:
    """The worker command `argv` wrapped in bubblewrap and resource limits."""
    exe = bwrap()
    python = Path(argv[0])
    venv = python.parent.parent
    real_python = Path(os.path.realpath(python))
    exposed = {venv, real_python.parent.parent, WORKER_SCRIPT.parent}
    exposed |= {Path(spec.path).parent / p for p in spec.python_path}
    # the home, the project (where stores and runs live) and any dir in $LDM_SANDBOX_HIDE are
    # empty tmpfs, made read-only once the mount points of what is re-exposed are in them
    hidden = [Path.home(), *hidden_dirs()]
    cmd = [exe, "--ro-bind", "/", "/", "--dev", "/dev", *_sized_tmpfs("/dev/shm", limits.tmp_mb)]
    cmd += ["--proc", "/proc", *_sized_tmpfs("/tmp", limits.tmp_mb)]
    for d in hidden:
        cmd += ["--tmpfs", str(d)]
    for d in sorted(exposed, key=lambda p: len(p.parts)):
        if d.exists():
            cmd += ["--ro-bind", str(d), str(d)]
    # the scratch dir: a size-limited tmpfs at the host directory's path, gone with the sandbox
    cmd += [*_sized_tmpfs(scratch, limits.scratch_mb), "--chdir", str(scratch)]
    for d in ["/dev", *hidden]:
        cmd += ["--remount-ro", str(d)]
    cmd += [
        "--setenv",
        "HOME",
        str(scratch),
        "--setenv",
        "TMPDIR",
        str(scratch),
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--",
        *argv,
    ]
    prlimit = shutil.which("prlimit")
    limit_args = [
        f"--as={limits.memory_mb * 1024 * 1024}",
        f"--cpu={limits.cpu_seconds}",
        f"--nofile={limits.open_files}",
    ]
    group = _pids_cgroup(limits)
    if group is None:
        limit_args.append(f"--nproc={limits.processes}")
    if not prlimit:
        raise EnvError("the sandbox needs `prlimit` (util-linux) to set resource limits")
    inner = [prlimit, *limit_args, "--", *cmd]
    if group is None:
        return inner
    join = f"echo $$ > {shlex.quote(str(group / 'cgroup.procs'))} && exec " + " ".join(
        shlex.quote(a) for a in inner
    )
    return ["/bin/sh", "-c", join]


def launch(argv: list[str], scratch: Path, spec: LibrarySpec) -> list[str]:
    """The "sandbox" launcher of ldm.envs.transport.process: `argv` under the limits in force."""
    return wrap_command(argv, scratch, spec, limits())


if __name__ == "__main__":  # print the wrapped command for a library, for inspection
    from ldm.envs.library.catalog import get_library
    from ldm.envs.library.venvs import ensure_venv

    lib = get_library(sys.argv[1])
    print(
        " ".join(
            shlex.quote(a)
            for a in wrap_command([str(ensure_venv(lib)), str(WORKER_SCRIPT)], Path("/tmp/x"), lib)
        )
    )
