"""Container backend: each library's worker in its own Docker image, no network, read-only root.

One image per library, built from its spec in two layers: a dependency image (a base image,
`$LDM_DOCKER_BASE`, default `ldm-base:bookworm`, with the spec's requirements installed into
/venv; tagged by the requirements alone) and on it the worker's files (a copy, seconds). Tags
are derived from the content, so a changed spec reinstalls and a changed worker only
re-copies. The worker talks the same wire protocol over
the container's stdin/stdout (`docker run -i --network none --read-only`) until the step path
moves it to two bind-mounted FIFOs; those and the shared step buffer (ldm/envs/transport/shm.py) are the
only host files it sees.

Registries may be unreachable: when the base image is missing it is made from local files
(`debootstrap` of Debian bookworm from the configured Debian mirror, then `docker import`).
If no Docker engine answers, `ensure_engine` starts `dockerd` (as root). Limits: the sandbox's
`SandboxLimits` (`limit_args`). Imports the standard library, ldm.envs.transport.connection/process, catalog and
sandbox (its limits) and ldm.envs.transport.shm; must not import gymnasium or an environment library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.transport.connection import WORKER_SCRIPT
from ldm.envs.transport.process import ProcessConnection
from ldm.envs.transport.sandbox import SandboxLimits, limits
from ldm.errors import EnvError

BASE_IMAGE = os.environ.get("LDM_DOCKER_BASE", "ldm-base:bookworm")
DEBIAN_MIRROR = os.environ.get("LDM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: The worker side (ldm/envs/worker/) copied into each image; its package file is not needed there.
WORKER_FILES = tuple(
    sorted(p.name for p in WORKER_SCRIPT.parent.glob("*.py") if p.name != "__init__.py")
)


def _docker(
    *args: str, check: bool = True, timeout: float | None = 600, input: bytes | None = None
) -> subprocess.CompletedProcess:
    exe = shutil.which("docker")
    if not exe:
        raise EnvError("backend 'docker' needs the docker client: `apt-get install docker.io`")
    proc = subprocess.run([exe, *args], capture_output=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        tail = "\n".join(proc.stderr.decode(errors="replace").strip().splitlines()[-15:])
        raise EnvError(f"`docker {' '.join(args[:3])} ...` failed:\n{tail}")
    return proc


def engine_running() -> bool:
    return (
        shutil.which("docker") is not None
        and _docker("info", check=False, timeout=20).returncode == 0
    )


def ensure_engine(start: bool = True, wait: float = 60.0) -> subprocess.Popen | None:
    """Make sure a Docker engine answers; start `dockerd` if allowed. Returns the dockerd
    process when this call started it (the caller stops it), else None."""
    if engine_running():
        return None
    if not start or not shutil.which("dockerd"):
        raise EnvError(
            "no Docker engine is running and `dockerd` is not available: `apt-get install docker.io`"
        )
    log = open(Path(tempfile.gettempdir()) / "ldm-dockerd.log", "w")  # noqa: SIM115 (the daemon's lifetime)
    proc = subprocess.Popen(
        ["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.time() + wait
    while time.time() < deadline:
        if engine_running():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(1)
    proc.kill()
    raise EnvError(f"dockerd did not come up within {wait:.0f} s; see {log.name}")


def _image_exists(tag: str) -> bool:
    return _docker("image", "inspect", tag, check=False, timeout=60).returncode == 0


def ensure_base_image(tag: str = BASE_IMAGE) -> str:
    """The base image, made from local files with debootstrap when it is missing."""
    if _image_exists(tag):
        return tag
    if not shutil.which("debootstrap"):
        raise EnvError(
            f"base image {tag} is missing and cannot be made: `apt-get install debootstrap`"
        )
    with tempfile.TemporaryDirectory() as root:
        proc = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                root,
                DEBIAN_MIRROR,
            ],
            capture_output=True,
            timeout=1800,
        )
        if proc.returncode != 0:
            raise EnvError(f"debootstrap failed: {proc.stderr.decode(errors='replace')[-1500:]}")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            [shutil.which("docker") or "docker", "import", "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            timeout=900,
        )
        tar.wait()
        if imp.returncode != 0:
            raise EnvError(f"docker import failed: {imp.stderr.decode(errors='replace')[-800:]}")
    return tag


def deps_tag(spec: LibrarySpec, base: str = BASE_IMAGE) -> str:
    """Tag of the library's dependency image: its requirements, api and base image only, so
    that a change of the worker's code does not reinstall them."""
    key = repr((spec.requirements, spec.api, base)).encode()
    return f"ldm-deps-{spec.name}:{hashlib.sha256(key).hexdigest()[:12]}"


def image_tag(spec: LibrarySpec, base: str = BASE_IMAGE) -> str:
    """Content-derived tag of the runnable image: the dependency image, the worker's own code
    and the spec's python_path files."""
    h = hashlib.sha256()
    h.update(deps_tag(spec, base).encode())
    for name in WORKER_FILES:
        h.update((WORKER_SCRIPT.parent / name).read_bytes())
    for p in spec.python_path:
        for f in sorted((Path(spec.path).parent / p).rglob("*.py")):
            h.update(f.read_bytes())
    return f"ldm-env-{spec.name}:{h.hexdigest()[:12]}"


def host_ca_bundle() -> Path | None:
    """The CA bundle this host trusts (PIP_CERT, SSL_CERT_FILE or the system's): copied into
    the build so that pip inside it trusts the same certificates (e.g. a TLS-inspecting proxy)."""
    import ssl

    for cand in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        ssl.get_default_verify_paths().cafile,
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def deps_dockerfile(spec: LibrarySpec, base: str, ca_bundle: bool = False) -> str:
    """The dependency image: a venv with the spec's requirements (the slow build, cached)."""
    flavour = "gymnasium" if spec.api == "gymnasium" else "gym"
    reqs = list(spec.requirements)
    if not any(r.lower().startswith(flavour) for r in reqs):
        reqs.append(flavour)
    if not any(r.lower().startswith("numpy") for r in reqs):
        reqs.append("numpy")
    quoted = " ".join(f"'{r}'" for r in reqs)
    lines = [f"FROM {base}", "RUN python3 -m venv /venv"]
    if ca_bundle:
        lines += ["COPY ca.crt /etc/ldm-ca.crt", "ENV PIP_CERT=/etc/ldm-ca.crt"]
    lines.append(f"RUN /venv/bin/pip install --no-cache-dir {quoted}")
    return "\n".join(lines) + "\n"


def dockerfile(spec: LibrarySpec, deps: str) -> str:
    """The runnable image: the worker files (and python_path dirs) copied onto `deps`, a
    build of a few seconds, so that a change of the worker's code costs no reinstall."""
    lines = [f"FROM {deps}", "COPY worker/ /ldm/"]
    if spec.python_path:
        lines.append("COPY paths/ /ldm/paths/")
    lines += ["ENV SDL_VIDEODRIVER=dummy MUJOCO_GL=egl PYTHONDONTWRITEBYTECODE=1", "WORKDIR /tmp"]
    return "\n".join(lines) + "\n"


def ensure_image(spec: LibrarySpec) -> str:
    """Build the library's image if its content-derived tag is missing (and its dependency
    image first, if that is missing too)."""
    if not spec.installable:
        raise EnvError(f"library {spec.name!r} is marked not installable: {spec.note}")
    base = ensure_base_image()
    tag = image_tag(spec, base)
    if _image_exists(tag):
        return tag
    deps = deps_tag(spec, base)
    if not _image_exists(deps):
        with tempfile.TemporaryDirectory() as ctx:
            ca = host_ca_bundle()
            if ca is not None:
                shutil.copy(ca, Path(ctx) / "ca.crt")
            (Path(ctx) / "Dockerfile").write_text(
                deps_dockerfile(spec, base, ca_bundle=ca is not None)
            )
            _docker("build", "-q", "-t", deps, ctx, timeout=3600)
    with tempfile.TemporaryDirectory() as ctx:
        c = Path(ctx)
        (c / "worker").mkdir()
        for name in WORKER_FILES:
            shutil.copy(WORKER_SCRIPT.parent / name, c / "worker" / name)
        for i, p in enumerate(spec.python_path):
            shutil.copytree(Path(spec.path).parent / p, c / "paths" / str(i))
        (c / "Dockerfile").write_text(dockerfile(spec, deps))
        _docker("build", "-q", "-t", tag, ctx, timeout=600)
    return tag


def limit_args(lim: SandboxLimits) -> list[str]:
    """`docker run` options for the sandbox's limits (one table for both isolations; memory
    is the container's cgroup limit here, the address space under bubblewrap)."""
    return [
        *("--tmpfs", f"/tmp:size={lim.scratch_mb}m"),
        *("--memory", f"{lim.memory_mb}m", "--pids-limit", str(lim.processes)),
        *("--ulimit", f"nofile={lim.open_files}:{lim.open_files}"),
        *("--ulimit", f"cpu={lim.cpu_seconds}:{lim.cpu_seconds}"),
    ]


def connect(spec: LibrarySpec, label: str) -> ProcessConnection:
    """A worker of `spec` in a fresh container (no network, read-only root, /tmp scratch)."""
    from ldm.envs.transport.shm_buffer import SharedBuffer

    ensure_engine()
    tag = ensure_image(spec)
    # the step buffer and its two wake-up FIFOs (ldm/envs/transport/shm.py): the only host files the
    # container sees, unlinked on the host as soon as the worker has opened them
    buffer = SharedBuffer.named("/ldm-shm")
    mounts = [(buffer.path, "/ldm-shm"), *buffer.add_wake()]
    argv = [
        shutil.which("docker") or "docker",
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        "--read-only",
        *limit_args(limits()),
        *(a for src, dst in mounts for a in ("--mount", f"type=bind,source={src},target={dst}")),
        tag,
        "/venv/bin/python",
        "-u",
        f"/ldm/{WORKER_SCRIPT.name}",
    ]
    try:
        conn = ProcessConnection(label, "", spec, argv=argv, client_env=True, buffer=buffer)
    except BaseException:
        buffer.close()
        raise
    conn.paths = [f"/ldm/paths/{i}" for i in range(len(spec.python_path))]
    conn.hint = f" (docker: no network, read-only root; {limits().describe(docker=True)})"
    return conn
