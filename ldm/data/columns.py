"""A run's columns: their names (`COLUMNS`), and the dtype and step shape of its obs and
actions columns for a space (`column_dtype`, `column_shape`), for the writer, relabelling,
the reader's checks and the recorder.

Imports numpy and `ldm.spaces` only.
"""

from __future__ import annotations

import numpy as np

from ldm.spaces import SpaceSpec

COLUMNS = ("obs", "actions", "rewards", "terminated", "truncated")


#: dtype of a run's obs/actions column by space kind (every other kind stores int64 indices)
_COLUMN_DTYPES = {"image": np.dtype(np.uint8), "continuous": np.dtype(np.float32)}


def column_dtype(spec: SpaceSpec) -> np.dtype:
    """dtype of a run's obs or actions column for a space."""
    return _COLUMN_DTYPES.get(spec.kind, np.dtype(np.int64))


def column_shape(spec: SpaceSpec) -> tuple[int, ...]:
    """Shape of one step of a run's obs or actions column for a space."""
    return spec.value_shape
