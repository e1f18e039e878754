"""The shared-memory step buffer's layout: where each array of a worker's slice of the batch
lives (`plan_layout` over the wire's space descriptions, `Layout`, `Field`). The worker gets
`Layout.wire()` in its `shm_attach` message and makes its views from it (shm_worker.py).

Imports numpy, ldm.errors and the worker's shm_worker (its info slots) and space_desc (the
element of a space's value); not the buffer, the
codec or any connection.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ldm.envs.worker import shm_worker, space_desc
from ldm.errors import EnvError

ALIGN = 64  # each array starts on its own cache line


class Field(NamedTuple):
    """One array of a worker's slice: `shape` includes the leading env dimension."""

    name: str
    offset: int
    dtype: str
    shape: tuple[int, ...]


class Layout(NamedTuple):
    """Where each array of a worker's slice lives in its buffer."""

    fields: tuple[Field, ...]
    size: int

    def wire(self) -> list[dict[str, Any]]:
        return [f._asdict() | {"shape": list(f.shape)} for f in self.fields]


def plan_layout(spaces: dict[str, Any], count: int) -> Layout:
    """The buffer layout for `count` envs with these space descriptions (from `make`);
    raises EnvError naming the space that cannot be shared."""
    elements = {}
    for key in ("observation", "action"):
        desc = spaces[key]
        element = space_desc.ELEMENTS.get(desc["type"])
        if element is None:
            raise EnvError(f"{key} space of type {desc['type']!r} has no shared-memory layout")
        elements[key] = element(desc)
    (obs_shape, obs_dtype), (act_shape, act_dtype) = elements["observation"], elements["action"]
    f8, b1, slots = np.dtype(np.float64).str, np.dtype(np.bool_).str, shm_worker.INFO_SLOTS
    arrays = [
        ("obs", obs_dtype, (count, *obs_shape)),
        ("actions", act_dtype, (count, *act_shape)),
        ("rewards", f8, (count,)),
        ("terminated", b1, (count,)),
        ("truncated", b1, (count,)),
        # the last observation and info of an episode that ended (autoreset) in this step
        ("final", b1, (count,)),
        ("final_obs", obs_dtype, (count, *obs_shape)),
        ("info_values", f8, (count, slots)),
        ("info_present", b1, (count, slots)),
        ("final_info_values", f8, (count, slots)),
        ("final_info_present", b1, (count, slots)),
    ]
    fields, offset = [], 0
    for name, dtype, shape in arrays:
        fields.append(Field(name, offset, dtype, shape))
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        offset += -(-max(nbytes, 1) // ALIGN) * ALIGN
    return Layout(tuple(fields), offset)
