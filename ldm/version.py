"""Which ldm is running: its version and, in a source checkout, the git commit.

Owns `describe()` (what `ldm --version` prints) and `code_commit()` (what an evaluation
report names). Imports the standard library only; must not import any other part of ldm.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from ldm import __version__

_ROOT = Path(__file__).resolve().parent.parent


@cache
def code_commit() -> str | None:
    """The short git commit of the ldm source checkout this code runs from, with `+dirty`
    where its tracked files have changes; None for an installed package (no .git)."""
    if not (_ROOT / ".git").exists():
        return None

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (commit + ("+dirty" if dirty else "")) or None


def describe() -> str:
    """`ldm 0.1.0 (commit abc1234)`, or without the commit outside a source checkout."""
    commit = code_commit()
    return f"ldm {__version__}" + (f" (commit {commit})" if commit else "")
