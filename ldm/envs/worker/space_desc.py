"""The wire's space description: a gym/gymnasium space as a plain dict.

The one home of what a space *is* on the worker side: `space_kind` (the standard class a
space is, along its MRO, in any gym generation) and `describe_space` (the dict the client
turns back into a gymnasium space, `ldm/envs/proxy.py` `space_from_desc`). The declared
wrappers, the legacy conversion and the shared-memory layout all read these descriptions.

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
