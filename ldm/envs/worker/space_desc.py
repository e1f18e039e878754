"""The wire's space description: a gym/gymnasium space as a plain dict.

The one home of what a space *is* on the wire: `space_kind` (the standard class a space is,
along its MRO, in any gym generation), `describe_space` (the dict the client turns back into
a gymnasium space, `ldm/envs/proxy.py` `space_from_desc`) and `ELEMENTS` (one env's value of
a described space in the shared step buffer). The declared wrappers, the legacy conversion
and the shared-memory layout all read these descriptions.

Imports: standard library and numpy only (runs in each library's own venv, Python 3.6).
"""

import numpy as np

#: The standard space classes ldm describes; a library's own space class is described as the
#: first of these in its method resolution order (a `class Grid(Box)` is a Box).
SPACE_KINDS = ("Box", "Discrete", "MultiDiscrete", "MultiBinary", "Dict", "Tuple")


def space_kind(space):
    """The standard gym/gymnasium space class `space` is an instance of, by name, or None.

    Walks the class's MRO for a class of a `gym.spaces` / `gymnasium.spaces` module, so a
    subclass (a library's `class Grid(Box)`) is handled as its base class, in any gym
    generation, without importing gym or gymnasium here.
    """
    for cls in type(space).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if cls.__name__ in SPACE_KINDS and module.split(".")[0] in ("gym", "gymnasium"):
            return cls.__name__
    return None


def _describe_box(space):
    return {
        "type": "Box",
        "low": np.asarray(space.low),
        "high": np.asarray(space.high),
        "dtype": np.dtype(space.dtype).str,
        "shape": list(space.shape),
    }


def _describe_multi_binary(space):
    n = space.n
    return {"type": "MultiBinary", "n": n if isinstance(n, int) else list(n)}


#: space kind -> its wire description (a plain dict); one small function per kind
_DESCRIBE = {
    "Box": _describe_box,
    "Discrete": lambda s: {"type": "Discrete", "n": int(s.n), "start": int(getattr(s, "start", 0))},
    "MultiDiscrete": lambda s: {"type": "MultiDiscrete", "nvec": np.asarray(s.nvec)},
    "MultiBinary": _describe_multi_binary,
    "Dict": lambda s: {
        "type": "Dict",
        "spaces": {k: describe_space(v) for k, v in s.spaces.items()},
    },
    "Tuple": lambda s: {"type": "Tuple", "spaces": [describe_space(v) for v in s.spaces]},
}


def describe_space(space):
    """A gym/gymnasium space -> a plain dict (the wire format of spaces). A list or tuple of
    spaces (one per agent, e.g. ma-gym's `MultiAgentActionSpace`) is described as a Tuple."""
    if isinstance(space, (list, tuple)) and space and all(space_kind(s) for s in space):
        return {"type": "Tuple", "spaces": [describe_space(s) for s in space]}
    describe = _DESCRIBE.get(space_kind(space))
    if describe is None:  # e.g. MiniGrid's text MissionSpace: fine inside a Dict a wrapper drops
        return {"type": "Unsupported", "name": type(space).__name__}
    return describe(space)


#: space kind -> the (shape, dtype) of one env's value in the shared step buffer (the client
#: lays the buffer out with it, ldm/envs/transport/shm_layout.py); Dict, Tuple and anything else are
#: not laid out (they keep the framed path)
ELEMENTS = {
    "Box": lambda d: (tuple(d["shape"]), np.dtype(d["dtype"]).str),
    "Discrete": lambda d: ((), np.dtype(np.int64).str),
    "MultiDiscrete": lambda d: (tuple(np.shape(d["nvec"])), np.dtype(np.int64).str),
    "MultiBinary": lambda d: (
        (d["n"],) if isinstance(d["n"], int) else tuple(d["n"]),
        np.dtype(np.int8).str,
    ),
}
