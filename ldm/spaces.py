"""SpaceSpec: the JSON-serialisable description of an observation or action space.

`gymnasium.spaces` are the contract between the environment hub and everything after it;
this module turns them into `SpaceSpec` records and holds the paper's limits. The model,
the store and the tokenizer depend on `SpaceSpec`, never on an environment library.

Imports: standard library, numpy, and gymnasium only inside `from_gym_space` (so that the
isolated env worker, which may run gym instead, can still import the rest).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import singledispatch
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from ldm.errors import SpaceError

#: Largest observation vector, in dimensions (paper, section 3.3).
MAX_OBS_DIMS = 128
#: Largest action vector, in dimensions (paper, section 3.3).
MAX_ACT_DIMS = 28
#: Bins per continuous value, and the largest category count of a discrete value.
N_BINS = 1024
#: Every image observation is resized to this (height, width, channels).
IMAGE_SHAPE = (64, 64, 3)

Kind = Literal["continuous", "discrete", "multi_discrete", "multi_binary", "image"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class SpaceSpec:
    """A space as ldm sees it.

    For `continuous`, `low`/`high` hold one bound per flattened dimension (may be +-inf).
    For `discrete`, `n` categories starting at `start`. For `multi_discrete`, `nvec` holds
    the category count of each flattened dimension. `multi_binary` is `shape` bits.
    `image` is a uint8 array of `shape` (H, W, C), resized to IMAGE_SHAPE by the tokenizer.
    """

    kind: Kind
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    n: int | None = None
    start: int = 0
    nvec: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpaceError(f"SpaceSpec.kind {self.kind!r} is not one of {KINDS}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        _RULES[self.kind].check(self)

    # -- sizes ---------------------------------------------------------------------------
    @property
    def flat_dim(self) -> int:
        """Number of scalar values this space contributes to a token (images count 0)."""
        return _RULES[self.kind].flat_dim(self)

    @property
    def value_shape(self) -> tuple[int, ...]:
        """Shape of one value as an array: () for a discrete category, `shape` otherwise."""
        return _RULES[self.kind].value_shape(self)

    @property
    def categories(self) -> tuple[int, ...]:
        """Category count of each flattened dim; continuous dims report N_BINS."""
        return _RULES[self.kind].categories(self)

    @property
    def is_bounded(self) -> np.ndarray:
        """Per flattened dim: both bounds finite (continuous only)."""
        if self.low is None or self.high is None:
            return np.ones(self.flat_dim, dtype=bool)
        return np.isfinite(np.asarray(self.low)) & np.isfinite(np.asarray(self.high))

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; +-inf bounds are written as strings so that any JSON reads them."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        for key in ("low", "high"):
            if d[key] is not None:
                d[key] = [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in d[key]]
        if d["nvec"] is not None:
            d["nvec"] = list(d["nvec"])
        if not d["extra"]:
            del d["extra"]
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpaceSpec:
        """Inverse of `to_dict`."""
        d = dict(d)
        for key in ("low", "high"):
            if d.get(key) is not None:
                d[key] = tuple(float(v) for v in d[key])
        if d.get("nvec") is not None:
            d["nvec"] = tuple(d["nvec"])
        d["shape"] = tuple(d.get("shape", ()))
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise SpaceError(f"SpaceSpec dict has unknown keys {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        """The JSON text of `to_dict` (a str, where every record's `to_dict` is a dict)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> SpaceSpec:
        """The spec of `to_json`'s text."""
        return cls.from_dict(json.loads(text))

    def describe(self) -> str:
        """Short human-readable form, e.g. `continuous(4,)`, `discrete(2)`."""
        return _RULES[self.kind].describe(self)


# -- behaviour per kind (one table; the tokenizer and the store have theirs) ---------------
def _check_bounds(spec: SpaceSpec) -> None:
    if spec.low is None or spec.high is None:
        raise SpaceError("a continuous SpaceSpec needs low and high (use +-inf)")
    low = tuple(float(v) for v in spec.low)
    high = tuple(float(v) for v in spec.high)
    if len(low) != spec.flat_dim or len(high) != spec.flat_dim:
        raise SpaceError(
            f"continuous SpaceSpec has {len(low)} low / {len(high)} high bounds "
            f"for {spec.flat_dim} dims; give one bound per flattened dimension"
        )
    object.__setattr__(spec, "low", low)
    object.__setattr__(spec, "high", high)


def _check_n(spec: SpaceSpec) -> None:
    if spec.n is None or spec.n < 1:
        raise SpaceError(f"a discrete SpaceSpec needs n >= 1, got n={spec.n}")


def _check_nvec(spec: SpaceSpec) -> None:
    if spec.nvec is None or len(spec.nvec) != spec.flat_dim:
        raise SpaceError("a multi_discrete SpaceSpec needs one nvec entry per dimension")
    object.__setattr__(spec, "nvec", tuple(int(v) for v in spec.nvec))


def _prod(spec: SpaceSpec) -> int:
    return int(math.prod(spec.shape)) if spec.shape else 1


class _KindRules(NamedTuple):
    check: Callable[[SpaceSpec], None]
    """Validate (and normalise) the kind's own fields."""
    flat_dim: Callable[[SpaceSpec], int]
    categories: Callable[[SpaceSpec], tuple[int, ...]]
    describe: Callable[[SpaceSpec], str]
    value_shape: Callable[[SpaceSpec], tuple[int, ...]]


def _nothing(spec: SpaceSpec) -> None:
    return None


def _shaped(spec: SpaceSpec) -> str:
    return f"{spec.kind}{spec.shape}"


def _shape(spec: SpaceSpec) -> tuple[int, ...]:
    return spec.shape


_RULES: dict[str, _KindRules] = {
    "continuous": _KindRules(
        _check_bounds, _prod, lambda s: (N_BINS,) * s.flat_dim, _shaped, _shape
    ),
    "discrete": _KindRules(
        _check_n, lambda s: 1, lambda s: (int(s.n),), lambda s: f"discrete({s.n})", lambda s: ()
    ),  # type: ignore[arg-type]
    "multi_discrete": _KindRules(
        _check_nvec,
        _prod,
        lambda s: tuple(s.nvec),
        lambda s: f"multi_discrete{list(s.nvec)}",  # type: ignore[arg-type]
        _shape,
    ),
    "multi_binary": _KindRules(_nothing, _prod, lambda s: (2,) * s.flat_dim, _shaped, _shape),
    "image": _KindRules(_nothing, lambda s: 0, lambda s: (), _shaped, _shape),
}


# -- gymnasium -> SpaceSpec ------------------------------------------------------------------
def from_gym_space(space: Any) -> SpaceSpec:
    """Describe a `gymnasium.spaces.Space` as a SpaceSpec (dispatched on the space type)."""
    import gymnasium.spaces as gs

    _register(gs)
    return _from_space(space)


def as_spec(space: Any) -> SpaceSpec:
    """A SpaceSpec as it is; a gymnasium space described by `from_gym_space`."""
    return space if isinstance(space, SpaceSpec) else from_gym_space(space)


@singledispatch
def _from_space(space: Any) -> SpaceSpec:
    raise SpaceError(
        f"space {space!r} ({type(space).__name__}) is not supported; ldm takes Box, Discrete, "
        "MultiDiscrete and MultiBinary. Declare a wrapper in the library spec "
        "(e.g. wrappers = ['flatten_dict']) to bring a Dict/Tuple space inside"
    )


_registered = False


def _register(gs: Any) -> None:
    global _registered
    if _registered:
        return
    _registered = True

    @_from_space.register(gs.Box)
    def _box(space: Any) -> SpaceSpec:
        shape = tuple(space.shape)
        if np.dtype(space.dtype) == np.uint8 and len(shape) == 3 and shape[-1] in (1, 3, 4):
            return SpaceSpec("image", shape, dtype="uint8")
        low = np.broadcast_to(space.low, shape).astype(np.float64).ravel()
        high = np.broadcast_to(space.high, shape).astype(np.float64).ravel()
        return SpaceSpec("continuous", shape, str(np.dtype(space.dtype)), tuple(low), tuple(high))

    @_from_space.register(gs.Discrete)
    def _discrete(space: Any) -> SpaceSpec:
        return SpaceSpec("discrete", (), "int64", n=int(space.n), start=int(space.start))

    @_from_space.register(gs.MultiDiscrete)
    def _multi_discrete(space: Any) -> SpaceSpec:
        if np.any(np.asarray(space.start) != 0):
            raise SpaceError("MultiDiscrete with a non-zero start is not supported")
        nvec = np.asarray(space.nvec).ravel()
        return SpaceSpec("multi_discrete", tuple(space.shape), "int64", nvec=tuple(nvec))

    @_from_space.register(gs.MultiBinary)
    def _multi_binary(space: Any) -> SpaceSpec:
        shape = (space.n,) if isinstance(space.n, int) else tuple(space.n)
        return SpaceSpec("multi_binary", shape, "int8")


# -- SpaceSpec -> gymnasium -------------------------------------------------------------------
def to_gym_space(spec: SpaceSpec) -> Any:
    """The `gymnasium.spaces.Space` a SpaceSpec describes (inverse of `from_gym_space`; used
    where a library needs a real space, e.g. Minari datasets)."""
    import gymnasium.spaces as gs

    return _TO_GYM[spec.kind](gs, spec)


def _box(gs: Any, spec: SpaceSpec) -> Any:
    low = np.asarray(spec.low, np.float32).reshape(spec.shape)
    high = np.asarray(spec.high, np.float32).reshape(spec.shape)
    return gs.Box(low, high, spec.shape, np.float32)


_TO_GYM: dict[str, Callable[[Any, SpaceSpec], Any]] = {
    "continuous": _box,
    "image": lambda gs, s: gs.Box(0, 255, s.shape, np.uint8),
    "discrete": lambda gs, s: gs.Discrete(s.n, start=s.start),
    "multi_discrete": lambda gs, s: gs.MultiDiscrete(np.asarray(s.nvec).reshape(s.shape)),
    "multi_binary": lambda gs, s: gs.MultiBinary(list(s.shape)),
}


# -- limits ----------------------------------------------------------------------------------
def check_limits(spec: SpaceSpec, role: Literal["observation", "action"], env_id: str) -> None:
    """Raise SpaceError if `spec` is outside the paper's limits for its role.

    Observation vectors: <= MAX_OBS_DIMS dims; actions: <= MAX_ACT_DIMS dims, never images;
    discrete values: <= N_BINS categories.
    """
    limit = MAX_OBS_DIMS if role == "observation" else MAX_ACT_DIMS
    if role == "action" and spec.kind == "image":
        raise SpaceError(f"{env_id}: image action spaces are not supported")
    if spec.flat_dim > limit:
        raise SpaceError(
            f"{env_id}: {role} space {spec.describe()} has {spec.flat_dim} dims, over the "
            f"limit of {limit}; declare a wrapper in the library spec that reduces it, "
            "or exclude the env"
        )
    too_many = [c for c in spec.categories if c > N_BINS]
    if spec.kind != "continuous" and too_many:
        raise SpaceError(
            f"{env_id}: {role} space {spec.describe()} has {max(too_many)} categories, over "
            f"the limit of {N_BINS}; exclude the env or wrap it"
        )
