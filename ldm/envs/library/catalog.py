"""The library catalog: one TOML spec per environment library, under `ldm/envs/catalog/`.

A spec is data (see docs/adding-a-library.md): what to install, what to import so that envs
register, which registered ids to take, how to make and wrap them. `LibrarySpec` validates a
spec on construction; a malformed file gets an error naming the file, the field and what is
allowed. This module must not import torch or any environment library.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import tomllib

from ldm.errors import EnvError

CATALOG_DIR = Path(__file__).parent.parent / "catalog"
#: os.pathsep-separated user catalog directories, read before the built-in one (a spec there
#: overrides a built-in spec of the same name); `ldm --catalog-dir DIR ...` prepends to it.
CATALOG_PATH_ENV = "LDM_CATALOG_PATH"

API_FLAVOURS = ("gymnasium", "gym")
#: How a venv's packages are installed: uv (fast, strict metadata) or the venv's own pip (for
#: old packages whose metadata uv rejects, e.g. gym 0.19, and for Python 3.6, which uv lacks).
INSTALLERS = ("uv", "pip")
#: How a git source is installed: `package` builds and installs it; `path` puts its tree on
#: the venv's sys.path (a `.pth` file), like `pip install -e .` without running its setup.py.
SOURCE_INSTALLS = ("package", "path")
#: Declared wrappers a spec may name; they run inside the worker (ldm/envs/worker/wrappers.py).
WRAPPERS = (
    "flatten_dict",
    "flatten_obs",
    "resize_image",
    "grid_as_image",
    "discrete_to_box",
    "seed_global_rngs",
    "sum_reward",
    "image_first_channels",
    "joint_action",
    "fire_on_life_loss",
    "derive_reset_seeds",
    "team_actions",
    "reseed_by_reconstruction",
    "seed_method_on_reset",
    "settle_first_reset",
    "clip_obs",
    "seed_spaces",
)


@dataclass(frozen=True)
class GitSource:
    """A library published only as a git repository, pinned to one commit (TOML table `[git]`).

    Installed from `git+url@commit`, or from a local mirror of source trees/archives when
    `LDM_SOURCE_MIRROR` is set (see ldm/envs/library/sources.py and docs/adding-a-library.md).
    """

    url: str
    """Repository URL, e.g. https://github.com/owner/repo (its last part names the mirror entry)."""
    commit: str
    """Full commit hash the spec was checked against."""
    install: str = "package"
    """One of SOURCE_INSTALLS: `package` (pip-installable) or `path` (the tree on sys.path)."""

    def __post_init__(self) -> None:
        if not self.url or not self.commit:
            raise EnvError("table [git] needs both 'url' and 'commit' (a pinned commit hash)")
        if self.install not in SOURCE_INSTALLS:
            raise EnvError(f"[git] install is {self.install!r}; allowed: {SOURCE_INSTALLS}")

    @property
    def repo(self) -> str:
        """The repository's name (last part of the URL, without `.git`)."""
        return self.url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


@dataclass(frozen=True)
class LibrarySpec:
    """One environment library, as written in `ldm/envs/catalog/<name>.toml`."""

    name: str
    """Library name, the first part of a qualified env id (`<name>/<registered id>`)."""
    domain: str
    """Field of application (control, robotics, driving, games, trading, ...)."""
    requirements: list[str] = field(default_factory=list)
    """pip requirement strings installed into the library's own venv (PEP 508, may be
    `pkg @ git+https://...`). numpy and gymnasium/gym must be listed when pinned."""
    imports: list[str] = field(default_factory=list)
    """Modules imported in the worker so that the library's envs register."""
    python_path: list[str] = field(default_factory=list)
    """Directories put on the worker's sys.path (env code that is not an installed package),
    relative to the spec file's directory unless absolute."""
    api: str = "gymnasium"
    """`gymnasium`, or `gym` for legacy libraries (converted to the 5-tuple API in the worker)."""
    python: str | None = None
    """Python version for the venv (e.g. "3.6"); None = the interpreter running ldm. Taken from
    pyenv or PATH when this machine has it, else uv provides it."""
    installer: str = "uv"
    """One of INSTALLERS: `uv`, or `pip` (the venv's own pip, pinned by build_requirements)."""
    build_requirements: list[str] = field(default_factory=list)
    """Installed first and pinned for every source build, e.g. ["pip==21.3.1",
    "setuptools==57.5.0", "wheel==0.37.1"] for packages that only build with old tools."""
    dependencies_before: str = ""
    """A date (YYYY-MM-DD): resolve requirements from what was released before it (uv's
    `--exclude-newer`), for a library whose newest dependencies break it (discover sets it to
    the day after the library's own release when that is what makes it run)."""
    git: GitSource | None = None
    """Git-only library: repository and pinned commit (see GitSource); installed before
    `requirements`, which then list its dependencies."""
    include: list[str] = field(default_factory=lambda: ["*"])
    """Glob patterns over registered ids to take (matched with fnmatch, case-sensitive)."""
    exclude: list[str] = field(default_factory=list)
    """Glob patterns over registered ids to leave out (applied after include)."""
    make_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments passed to every `make` of this library."""
    env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per registered id: extra make kwargs (override make_kwargs)."""
    wrappers: list[str] = field(default_factory=list)
    """Declared wrappers, applied in order inside the worker; one of WRAPPERS."""
    envs: list[str] = field(default_factory=list)
    """Registered ids that passed `ldm envs discover` (written by discover)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Registered ids that failed discovery, with the reason (written by discover)."""
    discovery: dict[str, Any] = field(default_factory=dict)
    """What the last `ldm envs discover` recorded: seconds, date, python, the build variant
    that worked and the ones retried before it (written by discover)."""
    installable: bool = True
    """False when the package cannot be installed on the supported platform; see `note`."""
    source: str = ""
    """Home of the library's code (git URL or PyPI page)."""
    note: str = ""
    """Free text: quirks, why not installable, licence notes."""
    sandbox: bool = False
    """Always run this library's workers in the sandbox (bubblewrap)."""
    pass_env: list[str] = field(default_factory=list)
    """Client environment variables (names or fnmatch patterns, e.g. `MYLIB_*`) passed to the
    library's workers on top of the allowlist in ldm/envs/transport/workerenv.py; workers see no others."""
    path: str = ""
    """File the spec was read from (set by the loader, not written in the TOML)."""

    def __post_init__(self) -> None:
        where = self.path or f"spec {self.name!r}"
        if not self.name or "/" in self.name:
            raise EnvError(f"{where}: field 'name' must be a non-empty string without '/'")
        if self.api not in API_FLAVOURS:
            raise EnvError(f"{where}: field 'api' is {self.api!r}; allowed: {API_FLAVOURS}")
        bad = [w for w in self.wrappers if w not in WRAPPERS]
        if bad:
            raise EnvError(f"{where}: field 'wrappers' has {bad}; allowed: {WRAPPERS}")
        if self.installer not in INSTALLERS:
            raise EnvError(
                f"{where}: field 'installer' is {self.installer!r}; allowed: {INSTALLERS}"
            )
        for fname in (
            "requirements",
            "build_requirements",
            "imports",
            "python_path",
            "include",
            "exclude",
            "envs",
            "wrappers",
            "pass_env",
        ):
            value = getattr(self, fname)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise EnvError(f"{where}: field {fname!r} must be a list of strings")
        for fname in ("make_kwargs", "env_kwargs", "failed", "discovery"):
            if not isinstance(getattr(self, fname), dict):
                raise EnvError(f"{where}: field {fname!r} must be a table")
        if self.dependencies_before and not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", self.dependencies_before
        ):
            raise EnvError(
                f"{where}: field 'dependencies_before' is {self.dependencies_before!r}; "
                'write a date, e.g. "2024-05-01"'
            )
        if self.dependencies_before and self.installer != "uv":
            raise EnvError(
                f"{where}: field 'dependencies_before' needs installer 'uv' "
                f"(pip has no --exclude-newer); pin the dependencies in 'requirements' instead"
            )
        if self.python is not None and not str(self.python).replace(".", "").isdigit():
            raise EnvError(f"{where}: field 'python' is {self.python!r}; write e.g. \"3.10\"")

    # -- derived ------------------------------------------------------------------------------
    def wants(self, registered_id: str) -> bool:
        """Whether a registered id passes the include/exclude patterns."""
        return any(fnmatchcase(registered_id, p) for p in self.include) and not any(
            fnmatchcase(registered_id, p) for p in self.exclude
        )

    def kwargs_for(self, registered_id: str) -> dict[str, Any]:
        """Make kwargs for one env: library defaults overridden by the per-env table."""
        return {**self.make_kwargs, **self.env_kwargs.get(registered_id, {})}

    @property
    def env_hash(self) -> str:
        """Content hash of what defines the library's venv: a changed spec rebuilds it."""
        parts: list[Any] = [self.requirements, self.python, self.api]
        if self.installer != "uv" or self.build_requirements or self.git:
            # only specs that use them hash them: existing venvs keep their names
            parts += [self.installer, self.build_requirements, self.git and asdict(self.git)]
        if self.dependencies_before:
            parts.append(self.dependencies_before)
        key = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def to_toml_dict(self) -> dict[str, Any]:
        """The spec as a TOML-ready dict (without the loader-set `path`)."""
        d = asdict(self)
        d.pop("path")
        return {k: v for k, v in d.items() if v not in (None, "", [], {})}


def load_spec(path: str | Path) -> LibrarySpec:
    """Read and validate one spec file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise EnvError(f"library spec {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise EnvError(f"{path}: not valid TOML: {e}") from None
    known = {f.name for f in fields(LibrarySpec)} - {"path"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise EnvError(f"{path}: unknown field(s) {unknown}; allowed: {sorted(known)}")
    for required in ("name", "domain"):
        if required not in data:
            raise EnvError(f"{path}: missing required field {required!r}")
    if "git" in data:
        git = data["git"]
        if not isinstance(git, dict):
            raise EnvError(f"{path}: field 'git' must be a table with 'url' and 'commit'")
        try:
            data["git"] = GitSource(**git)
        except TypeError as e:
            raise EnvError(f"{path}: table [git]: {e}; allowed: url, commit, install") from None
        except EnvError as e:
            raise EnvError(f"{path}: {e}") from None
    return LibrarySpec(**data, path=str(path))


def user_catalog_dirs() -> list[Path]:
    """The user catalog directories named by $LDM_CATALOG_PATH, in order."""
    raw = os.environ.get(CATALOG_PATH_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def catalog_write_dir(catalog_dir: str | Path | None = None) -> Path:
    """Where `ldm envs discover` writes specs: `catalog_dir`, else the first user directory,
    else the built-in catalog of a source checkout; never into an installed package."""
    if catalog_dir is not None:
        return Path(catalog_dir)
    users = user_catalog_dirs()
    if users:
        return users[0]
    if {"site-packages", "dist-packages"} & set(CATALOG_DIR.parts):
        raise EnvError(
            f"ldm is installed as a package ({CATALOG_DIR}); discover does not write into it. "
            f"Set {CATALOG_PATH_ENV}=DIR (or pass --catalog-dir DIR) to keep your specs in DIR"
        )
    return CATALOG_DIR


@cache
def load_catalog(directory: str | None = None) -> dict[str, LibrarySpec]:
    """All specs of one catalog directory, or (default) of the user directories in
    $LDM_CATALOG_PATH and then the built-in one, by name (the first directory naming a library
    wins, so a user spec overrides a built-in one)."""
    if directory is not None:
        return _load_dir(Path(directory))
    specs: dict[str, LibrarySpec] = {}
    for d in user_catalog_dirs():
        if not d.is_dir():
            raise EnvError(
                f"{CATALOG_PATH_ENV} names {d}, which is not a directory; create it "
                f"(`ldm envs discover` writes specs there) or fix the variable"
            )
        specs = {**_load_dir(d), **specs}
    return {**_load_dir(CATALOG_DIR), **specs}


def _load_dir(directory: Path) -> dict[str, LibrarySpec]:
    specs: dict[str, LibrarySpec] = {}
    for path in sorted(directory.glob("*.toml")):
        spec = load_spec(path)
        if spec.name in specs:
            raise EnvError(
                f"{path}: library name {spec.name!r} also used by {specs[spec.name].path}"
            )
        specs[spec.name] = spec
    return specs


def get_library(name: str, directory: str | None = None) -> LibrarySpec:
    """The spec of one library; unknown names list the known ones."""
    catalog = load_catalog(directory)
    if name not in catalog:
        import difflib

        close = difflib.get_close_matches(name, list(catalog), n=5)
        hint = f" Did you mean {close}?" if close else f" Known: {sorted(catalog)}"
        raise EnvError(f"no library named {name!r} in the catalog.{hint}")
    return catalog[name]
