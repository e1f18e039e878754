"""The environment variables an env worker starts with: a cleared environment plus an allowlist.

Environment code is untrusted and what it reads can end up in observations or infos, which are
recorded into the store and shared with the dataset; a token in the user's shell must not be
one of them. So a worker (process backend, sandboxed or not, and the Ray actor's worker) gets
only:

- `ALLOWED`: locale, `PATH`, library loading, thread counts, GPU selection, headless rendering
  and the few `PYTHON*` settings that do not change which code runs (`PYTHONPATH`/`PYTHONHOME`
  would pull ldm's own packages into the library's venv);
- `UNSANDBOXED` as well when the worker is not sandboxed: the user's home, proxies and CA
  bundles (an unsandboxed worker has the network and the home directory anyway; libraries
  keep their caches in it);
- the names a library's spec lists in `pass_env`, and those in `$LDM_WORKER_PASS_ENV`
  (comma-separated; names or fnmatch patterns), for what a user's setup needs;
- `HOME` and `TMPDIR` set to the worker's scratch directory when sandboxed, and headless
  defaults (`SDL_VIDEODRIVER=dummy`, `MUJOCO_GL=egl`) unless set.

The Docker backend needs none of this: a container sees only its image's variables.
This module imports only the standard library and ldm.envs.library.catalog.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path

from ldm.envs.library.catalog import LibrarySpec

ALLOWED = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "MUJOCO_GL",
    "PYOPENGL_PLATFORM",
    "EGL_PLATFORM",
    "SDL_VIDEODRIVER",
    "SDL_AUDIODRIVER",
    "PYTHONHASHSEED",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "PYTHONWARNINGS",
    "PYTHONFAULTHANDLER",
    "PYTHONDONTWRITEBYTECODE",
)
UNSANDBOXED = (
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
    "XDG_*",
    "DISPLAY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)
DEFAULTS = {"SDL_VIDEODRIVER": "dummy", "MUJOCO_GL": "egl"}
USER_PASS_ENV = "LDM_WORKER_PASS_ENV"


def allowed_patterns(spec: LibrarySpec, sandboxed: bool) -> list[str]:
    """The names (fnmatch patterns) a worker of `spec` may receive from the client."""
    user = [p.strip() for p in os.environ.get(USER_PASS_ENV, "").split(",") if p.strip()]
    return [*ALLOWED, *(() if sandboxed else UNSANDBOXED), *spec.pass_env, *user]


def worker_environment(spec: LibrarySpec, scratch: Path, sandboxed: bool) -> dict[str, str]:
    """The complete environment of a worker of `spec` whose scratch directory is `scratch`."""
    patterns = allowed_patterns(spec, sandboxed)
    env = {k: v for k, v in os.environ.items() if any(fnmatchcase(k, p) for p in patterns)}
    for k, v in DEFAULTS.items():
        env.setdefault(k, v)
    if sandboxed:
        env["HOME"] = env["TMPDIR"] = str(scratch)
    return env
