"""Exception types, one per part of the pipeline.

Every message names the thing at fault, the limit or rule it broke, and the fix. Also the
one check every record's reader makes (`known_keys`). This module imports only the standard
library: every part (and the isolated env worker's client) uses it.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


class LDMError(Exception):
    """Base class of every error ldm raises on purpose."""


class SpaceError(LDMError):
    """A space is unsupported or outside the paper's limits."""


class EnvError(LDMError):
    """An environment, its library spec or its worker failed."""


class StoreError(LDMError):
    """The trajectory store is missing, corrupted or was given bad data."""


class DamagedRunError(StoreError):
    """A committed run's column failed its check: a chunk missing, cut, changed, or a
    whole-column checksum that does not match. Names the run, so a caller can drop it."""

    def __init__(self, run_id: str, stream: int, column: str, what: str, store: str = "") -> None:
        self.run_id, self.stream, self.column, self.what, self.store = (
            run_id,
            stream,
            column,
            what,
            store,
        )
        super().__init__(
            f"run {run_id} stream {stream} column {column}: {what}; run "
            f"`ldm data verify {store or 'STORE'}` to list every damaged run; restore it from "
            "a copy, or train with --on-bad-run drop to skip it"
        )

    def __reduce__(self) -> Any:  # picklable across processes with its fields
        return (
            DamagedRunError,
            (self.run_id, self.stream, self.column, self.what, self.store),
        )


class DiskFullError(LDMError):
    """A write found its filesystem full; what was half-written is removed (ldm/disk.py)."""


class ModelError(LDMError):
    """A model config, checkpoint or input is invalid."""


class RefGenError(LDMError):
    """Reference-policy generation failed or was misconfigured."""


class TrainError(LDMError):
    """Training is misconfigured or diverged."""


class EvalError(LDMError):
    """Evaluation is misconfigured or an env could not be evaluated."""


class ConfigError(LDMError):
    """A configuration file or dataclass holds an invalid value."""


def known_keys(
    record: Any, d: dict[str, Any], what: str, error: type[LDMError], hint: str = ""
) -> dict[str, Any]:
    """`d` when every key is a field of the dataclass `record`; else `error` naming the unknown
    keys and the known ones (a misspelt key in a file is an error, not a silent default)."""
    known = [f.name for f in fields(record)]
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise error(f"{what} has unknown keys {unknown}; known: {known}{hint}")
    return d
