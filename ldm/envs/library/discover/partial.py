"""Discover's partial spec: what a discovery has found so far, written as it goes, so that a
long library stopped (killed, out of time) keeps the envs it had tried.

After an env's outcome (at most once per `every` seconds: a stop loses at most that much)
the spec and its sidecar are rewritten: the envs and failures recorded
before this discovery, overlaid with what this one has found, and a `[discovery]` record
with `partial = true` and how many envs were tried, which `ldm envs list --libraries` shows.
The final write (`record.write_discovery`) replaces it with the complete result.

Imports ldm's hub modules; never an environment library.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import replace
from pathlib import Path

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.discover.record import write_discovery
from ldm.envs.library.registry import _sidecar, spaces_path
from ldm.envs.library.trial import EnvTrial
from ldm.errors import LDMError


class PartialSpec:
    """Collects env outcomes as trials report them and writes the partial spec."""

    def __init__(self, spec: LibrarySpec, every: float = 1.0):
        self.every = every
        self.lock = threading.Lock()
        self.last = 0.0
        self.passed: dict[str, EnvTrial] = {}
        self.failed: dict[str, str] = {}
        self.spec = spec
        self.error: Exception | None = None
        # what an earlier discovery recorded stays until this one tries that env
        side = _sidecar(str(spaces_path(spec))) if spec.path and Path(spec.path).exists() else {}
        self.base_passed = {
            rid: EnvTrial.from_sidecar(rid, side[rid]) for rid in spec.envs if rid in side
        }
        self.base_failed = dict(spec.failed)

    def __call__(self, spec: LibrarySpec, rid: str, result: EnvTrial | str) -> None:
        """One env's outcome (the `on_result` of `trials.try_all`)."""
        with self.lock:
            self.spec = spec
            if isinstance(result, EnvTrial):
                self.passed[rid] = result
                self.failed.pop(rid, None)
            else:
                self.failed[rid] = result
                self.passed.pop(rid, None)
            if self.error is None and time.monotonic() - self.last >= self.every:
                try:
                    self._write()
                except (LDMError, OSError) as e:  # the trials go on; the final write says it
                    self.error = e

    def flush(self) -> None:
        """Write what has come in since the last write."""
        with self.lock:
            self._write()

    @property
    def tried(self) -> int:
        return len(self.passed) + len(self.failed)

    def _write(self) -> None:
        self.last = time.monotonic()
        mine = set(self.passed) | set(self.failed)
        passed = {k: v for k, v in self.base_passed.items() if k not in mine}
        failed = {k: v for k, v in self.base_failed.items() if k not in mine}
        passed.update(self.passed)
        failed.update(self.failed)
        discovery = {
            "partial": True,
            "tried": self.tried,
            "date": datetime.date.today().isoformat(),
            "note": "stopped before it finished: run `ldm envs discover` again for the rest",
        }
        write_discovery(replace(self.spec, discovery=discovery), passed, failed)
