"""Source trees of git-only libraries: fetched from a local mirror or cloned at the pinned commit.

A spec's `[git]` table (`GitSource`) names a repository and a commit. Where
`LDM_SOURCE_MIRROR` is set (a directory, or several joined with `:`), the tree comes from
there, for machines that cannot reach the git host (air-gapped clusters, CI): an entry is a
directory or an archive (`.tar.gz`, `.tgz`, `.tar`, `.zip`) named after the repository, with
or without `-<commit>` (`gym-inventory`, `gym-inventory-4761c13...`, `gym-inventory.tar.gz`;
names compare case-insensitively). A plain directory is trusted to hold the pinned commit.
Without a mirror the repository is cloned with `git` and checked out at the commit.

The tree is copied into the library's venv (`<venv>/src/<repo>`), never built in place, so a
mirror may be read-only. Imports: standard library and ldm.envs.library.catalog / ldm.errors only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ldm.envs.library.catalog import GitSource
from ldm.errors import EnvError

MIRROR_ENV = "LDM_SOURCE_MIRROR"
ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")


def mirror_dirs() -> list[Path]:
    """The mirror directories named by `LDM_SOURCE_MIRROR` (empty when unset)."""
    value = os.environ.get(MIRROR_ENV, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def find_in_mirror(git: GitSource, mirrors: list[Path]) -> Path | None:
    """The mirror entry of a repository: commit-named entries first, then the plain name."""
    stems = [f"{git.repo}-{git.commit}", f"{git.repo}-{git.commit[:7]}", git.repo]
    for mirror in mirrors:
        if not mirror.is_dir():
            raise EnvError(
                f"{MIRROR_ENV} names {mirror}, which is not a directory; point it at a folder "
                "of source trees or archives"
            )
        entries = {p.name.lower(): p for p in mirror.iterdir()}
        for stem in stems:
            for suffix in ("", *ARCHIVES):
                hit = entries.get(f"{stem}{suffix}".lower())
                if hit is not None and (suffix or hit.is_dir()):
                    return hit
    return None


def fetch(git: GitSource, dest: Path, library: str) -> str:
    """Put the library's source tree at `dest` (which must not exist); returns its origin."""
    mirrors = mirror_dirs()
    if mirrors:
        entry = find_in_mirror(git, mirrors)
        if entry is None:
            raise EnvError(
                f"library {library!r}: {MIRROR_ENV}={os.environ[MIRROR_ENV]} has no entry for "
                f"{git.repo!r} at commit {git.commit[:12]} (looked for a folder or archive "
                f"named {git.repo} or {git.repo}-{git.commit[:7]}). Add it there, or unset "
                f"{MIRROR_ENV} to clone {git.url}."
            )
        _copy_entry(entry, dest)
        return f"mirror:{entry}"
    _clone(git, dest, library)
    return f"git:{git.url}@{git.commit}"


def _copy_entry(entry: Path, dest: Path) -> None:
    if entry.is_dir():
        shutil.copytree(entry, dest, symlinks=True)
    else:
        unpacked = dest.with_name(dest.name + ".unpack")
        shutil.unpack_archive(str(entry), str(unpacked))
        # an archive holds either the tree's files or one top folder (repo-commit/)
        inner = list(unpacked.iterdir())
        root = inner[0] if len(inner) == 1 and inner[0].is_dir() else unpacked
        os.replace(root, dest)
        shutil.rmtree(unpacked, ignore_errors=True)
    for path in [dest, *dest.rglob("*")]:  # mirrors are often read-only; builds write here
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)


def _clone(git: GitSource, dest: Path, library: str) -> None:
    if shutil.which("git") is None:
        raise EnvError(
            f"library {library!r} is installed from git ({git.url}) but `git` is not on PATH; "
            f"install git, or set {MIRROR_ENV} to a folder holding its source tree"
        )
    steps = (
        ["git", "clone", "--quiet", "--no-checkout", git.url, str(dest)],
        ["git", "-C", str(dest), "checkout", "--quiet", git.commit],
    )
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EnvError(
                f"library {library!r}: `{' '.join(cmd)}` failed: {proc.stderr.strip()[-500:]}\n"
                f"Without network access, set {MIRROR_ENV} to a folder holding {git.repo}."
            )
