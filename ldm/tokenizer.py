"""Tokenizer: environment arrays -> the model's input layout, driven only by SpaceSpec.

This is the contract between the trajectory store's loader (which tokenizes in its worker
processes), the model, training and evaluation. Pure numpy.

Values (paper, section 3.3):
- continuous observations and rewards: mu-law `F(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu M)`
  with mu=100, M=256, clipped to [-1, 1], then N_BINS uniform bins;
- bounded continuous actions: scaled to [-1, 1] by the bounds, then N_BINS uniform bins;
  unbounded action dims take the mu-law path;
- discrete / multi-discrete / multi-binary values: category indices (< N_BINS);
- images: uint8, resized to IMAGE_SHAPE.

Alignment: the token for step t holds o_t with a_{t-1}, r_{t-1}, d_{t-1}; the target at t is
the reference action for o_t. The first token of a context carries DONE_START and zero
padding for the previous action and reward.

The window and batch records and their layout are `ldm.tokens.Window` / `Batch`.
`tokenize_step` builds the tokens of transitions from their parts; training
(`tokenize_window`, in the store's loader) and acting (`ldm.model.acting`) both use it, so the
two cannot drift apart. Behaviour per space kind is in one table (`_CODECS`).

Imports numpy, `ldm.spaces`, `ldm.tokens` and `ldm.errors` only: no torch, no env library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ldm.errors import SpaceError
from ldm.spaces import IMAGE_SHAPE, MAX_ACT_DIMS, MAX_OBS_DIMS, N_BINS, SpaceSpec
from ldm.tokens import PER_STEP, Batch, Window

MU = 100.0
M = 256.0
_LOG_DEN = float(np.log1p(MU * M))

DIM_PAD, DIM_CONTINUOUS, DIM_CATEGORICAL = 0, 1, 2
DONE_NONE, DONE_TERMINATED, DONE_TRUNCATED, DONE_START = 0, 1, 2, 3


# -- scalar maps -----------------------------------------------------------------------------
def mu_law(x: np.ndarray) -> np.ndarray:
    """Mu-law companding of `x` into [-1, 1] (clipped)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / _LOG_DEN
    return np.clip(y, -1.0, 1.0)


def inv_mu_law(y: np.ndarray) -> np.ndarray:
    """Inverse of `mu_law` on [-1, 1]."""
    y = np.asarray(y, dtype=np.float64)
    return np.sign(y) * np.expm1(np.abs(y) * _LOG_DEN) / MU


def uniform_bins(y: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] -> N_BINS uniform bins (int16)."""
    b = np.floor((np.asarray(y, dtype=np.float64) + 1.0) * (N_BINS / 2.0))
    return np.clip(b, 0, N_BINS - 1).astype(np.int16)


def bin_centres(b: np.ndarray) -> np.ndarray:
    """Bins -> the centre of each bin in [-1, 1]."""
    return -1.0 + (np.asarray(b, dtype=np.float64) + 0.5) * (2.0 / N_BINS)


def _finite(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise SpaceError(
            f"{what} holds a non-finite value ({x[tuple(bad)]}) at index {tuple(int(i) for i in bad)}; "
            "ldm never bins NaN/inf silently: fix or filter the data at its source"
        )
    return x


# -- per-kind codecs -------------------------------------------------------------------------
def _check_dims(dims: int, limit: int, role: str, spec: SpaceSpec) -> None:
    if dims > limit:
        raise SpaceError(f"{role} space {spec.describe()} has {dims} dims, over the limit {limit}")


def _categories(spec: SpaceSpec, flat: np.ndarray, what: str) -> np.ndarray:
    idx = flat.astype(np.int64) - (spec.start if spec.kind == "discrete" else 0)
    cats = np.asarray(spec.categories)
    if np.any(idx < 0) or np.any(idx >= cats[None, : idx.shape[1]]):
        raise SpaceError(f"{what} value outside its space {spec.describe()}: {flat[:1]}")
    return idx.astype(np.int16)


def _continuous_values(spec: SpaceSpec, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = mu_law(flat)
    return uniform_bins(y), y


def _categorical_values(spec: SpaceSpec, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _categories(spec, flat, "observation"), np.zeros(flat.shape)


def _continuous_action_bins(spec: SpaceSpec, flat: np.ndarray) -> np.ndarray:
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    bounded = spec.is_bounded
    span = np.where(bounded, high - low, 1.0)
    y_bounded = 2.0 * (flat - np.where(bounded, low, 0.0)) / np.where(span > 0, span, 1.0) - 1.0
    y = np.where(bounded, np.clip(y_bounded, -1.0, 1.0), mu_law(flat))
    return uniform_bins(y)


def _categorical_action_bins(spec: SpaceSpec, flat: np.ndarray) -> np.ndarray:
    return _categories(spec, flat, "action")


def _decode_continuous(spec: SpaceSpec, b: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    bounded = spec.is_bounded
    c = bin_centres(b)
    span = np.where(bounded, high - low, 0.0)
    scaled = np.where(bounded, np.where(bounded, low, 0.0) + (c + 1.0) / 2.0 * span, inv_mu_law(c))
    return scaled.astype(np.dtype(spec.dtype)).reshape(*lead, *spec.shape)


def _decode_discrete(spec: SpaceSpec, b: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    return (b[..., 0].astype(np.int64) + spec.start).reshape(lead)


def _decode_categories(spec: SpaceSpec, b: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    return b.astype(np.dtype(spec.dtype)).reshape(*lead, *spec.shape)


class _Codec(NamedTuple):
    """How values of one space kind become tokens; None: the kind cannot be an action."""

    dim_type: int
    obs_values: Callable[[SpaceSpec, np.ndarray], tuple[np.ndarray, np.ndarray]] | None
    act_bins: Callable[[SpaceSpec, np.ndarray], np.ndarray] | None
    decode: Callable[[SpaceSpec, np.ndarray, tuple[int, ...]], np.ndarray] | None


_CATEGORICAL = _Codec(
    DIM_CATEGORICAL, _categorical_values, _categorical_action_bins, _decode_categories
)
_CODECS: dict[str, _Codec] = {
    "continuous": _Codec(
        DIM_CONTINUOUS, _continuous_values, _continuous_action_bins, _decode_continuous
    ),
    "discrete": _CATEGORICAL._replace(decode=_decode_discrete),
    "multi_discrete": _CATEGORICAL,
    "multi_binary": _CATEGORICAL,
    "image": _Codec(DIM_PAD, None, None, None),  # frames go to `image`, not to dims
}


def _action_codec(spec: SpaceSpec) -> _Codec:
    codec = _CODECS[spec.kind]
    if codec.act_bins is None:
        raise SpaceError(f"{spec.kind} action spaces are not supported")
    _check_dims(spec.flat_dim, MAX_ACT_DIMS, "action", spec)
    return codec


# -- per-space layout ------------------------------------------------------------------------
def obs_dim_type(spec: SpaceSpec) -> np.ndarray:
    """(MAX_OBS_DIMS,) int8: the type of each padded observation dim."""
    t = np.zeros(MAX_OBS_DIMS, dtype=np.int8)
    _check_dims(spec.flat_dim, MAX_OBS_DIMS, "observation", spec)
    t[: spec.flat_dim] = _CODECS[spec.kind].dim_type
    return t


def act_layout(spec: SpaceSpec) -> tuple[np.ndarray, np.ndarray]:
    """(act_dim_type, act_n): per padded action dim, its type and its number of valid bins."""
    codec = _action_codec(spec)
    t = np.zeros(MAX_ACT_DIMS, dtype=np.int8)
    n = np.zeros(MAX_ACT_DIMS, dtype=np.int16)
    t[: spec.flat_dim] = codec.dim_type
    n[: spec.flat_dim] = spec.categories
    return t, n


# -- observations ----------------------------------------------------------------------------
def encode_observations(
    spec: SpaceSpec, obs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(T, *shape) observations -> (obs_bins (T,128) int16, obs_values (T,128) f32, image|None)."""
    obs = _finite(obs, "observation")
    T = obs.shape[0]
    bins = np.zeros((T, MAX_OBS_DIMS), dtype=np.int16)
    values = np.zeros((T, MAX_OBS_DIMS), dtype=np.float32)
    encode = _CODECS[spec.kind].obs_values
    if encode is None:
        return bins, values, resize_images(obs)
    flat = obs.reshape(T, -1)
    d = flat.shape[1]
    _check_dims(d, MAX_OBS_DIMS, "observation", spec)
    bins[:, :d], values[:, :d] = encode(spec, flat)
    return bins, values, None


def resize_images(images: np.ndarray) -> np.ndarray:
    """(T, H, W, C) uint8 -> (T, 64, 64, 3) uint8 by nearest-neighbour sampling.

    1-channel frames are repeated to 3 channels; a 4th (alpha) channel is dropped.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise SpaceError(f"image observations must be (T, H, W, C), got shape {images.shape}")
    _, h, w, c = images.shape
    H, W, _ = IMAGE_SHAPE
    if (h, w) != (H, W):
        rows = (np.arange(H) * h // H).astype(np.int64)
        cols = (np.arange(W) * w // W).astype(np.int64)
        images = images[:, rows][:, :, cols]
    if c == 1:
        images = np.repeat(images, 3, axis=-1)
    elif c == 4:
        images = images[..., :3]
    return np.ascontiguousarray(images, dtype=np.uint8)


# -- actions ---------------------------------------------------------------------------------
def encode_actions(spec: SpaceSpec, actions: np.ndarray) -> np.ndarray:
    """(T, *shape) actions -> (T, 28) int16 bins/categories (0 in padded dims)."""
    actions = _finite(actions, "action")
    codec = _action_codec(spec)
    T = actions.shape[0]
    flat = actions.reshape(T, -1)
    d = flat.shape[1]
    _check_dims(d, MAX_ACT_DIMS, "action", spec)
    out = np.zeros((T, MAX_ACT_DIMS), dtype=np.int16)
    out[:, :d] = codec.act_bins(spec, flat)  # type: ignore[misc]
    return out


def decode_actions(spec: SpaceSpec, bins: np.ndarray) -> np.ndarray:
    """(..., 28) bins -> actions in the env's format: (..., *shape) for Box/Multi*, (...) for Discrete.

    Continuous actions decode to bin centres, always inside the bounds.
    """
    bins = np.asarray(bins)
    return _action_codec(spec).decode(spec, bins[..., : spec.flat_dim], bins.shape[:-1])  # type: ignore[misc]


# -- rewards and termination -----------------------------------------------------------------
def encode_rewards(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,) rewards -> (bins int16, mu-law values float32)."""
    r = _finite(np.asarray(rewards, dtype=np.float64), "reward")
    y = mu_law(r)
    return uniform_bins(y), y.astype(np.float32)


def done_codes(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """(T,) termination signals -> DONE_TERMINATED / DONE_TRUNCATED / DONE_NONE (int8)."""
    term, trunc = np.asarray(terminated, bool), np.asarray(truncated, bool)
    return np.where(term, DONE_TERMINATED, np.where(trunc, DONE_TRUNCATED, DONE_NONE)).astype(
        np.int8
    )


# -- tokens ----------------------------------------------------------------------------------
def tokenize_step(
    obs_spec: SpaceSpec,
    act_spec: SpaceSpec,
    observations: np.ndarray,
    prev_actions: np.ndarray,
    prev_rewards: np.ndarray,
    prev_done: np.ndarray,
    targets: np.ndarray | None = None,
) -> Window:
    """The tokens of T transitions of one env from their parts.

    observations (T, *shape) are o_t; prev_actions (T, 28) the bins of a_{t-1}; prev_rewards
    (T,) the raw r_{t-1}; prev_done (T,) the DONE_* code of d_{t-1}. Where prev_done is
    DONE_START the previous reward is padding (bin 0, value 0). `targets` (T, 28) are the bins
    of the reference action (zero when acting, which has none).
    """
    T = len(observations)
    obs_bins, obs_values, image = encode_observations(obs_spec, observations)
    start = np.asarray(prev_done) == DONE_START
    r_bins, r_values = encode_rewards(np.where(start, 0.0, prev_rewards))
    a_type, a_n = act_layout(act_spec)
    return Window(
        obs_bins=obs_bins,
        obs_values=obs_values,
        obs_dim_type=obs_dim_type(obs_spec),
        has_image=np.asarray(image is not None),
        prev_actions=np.asarray(prev_actions, np.int16),
        prev_rewards=np.where(start, 0, r_bins).astype(np.int16),
        prev_reward_values=np.where(start, 0.0, r_values).astype(np.float32),
        prev_done=np.asarray(prev_done, np.int8),
        targets=np.zeros((T, MAX_ACT_DIMS), np.int16) if targets is None else targets,
        act_dim_type=a_type,
        act_n=a_n,
        loss_mask=np.ones(T, dtype=bool),
        image=image,
    )


def tokenize_window(
    obs_spec: SpaceSpec,
    act_spec: SpaceSpec,
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    targets: np.ndarray | None = None,
    pad_to: int | None = None,
) -> Window:
    """Tokenize T consecutive transitions (o_t, a_t, r_t, term_t, trunc_t) into one window.

    The window's first token is a start of context (no previous action). `targets` are the
    reference actions (defaults to `actions`). With `pad_to` > T, the window is left-padded
    to that length and the padding is masked out of the loss (`loss_mask`).
    """
    T = len(observations)
    if not (len(actions) == len(rewards) == len(terminated) == len(truncated) == T):
        raise SpaceError(
            "tokenize_window needs equal lengths, got "
            f"obs {T}, actions {len(actions)}, rewards {len(rewards)}, "
            f"terminated {len(terminated)}, truncated {len(truncated)}"
        )
    act_bins = encode_actions(act_spec, actions)
    tgt_bins = act_bins if targets is None else encode_actions(act_spec, targets)
    rewards = _finite(np.asarray(rewards, dtype=np.float64), "reward")
    # the token at t holds a_{t-1}, r_{t-1}, d_{t-1}: shift by one, a start of context first
    prev_actions = np.zeros_like(act_bins)
    prev_actions[1:] = act_bins[:-1]
    prev_rewards = np.zeros(T)
    prev_rewards[1:] = rewards[:-1]
    prev_done = np.full(T, DONE_START, dtype=np.int8)
    prev_done[1:] = done_codes(terminated, truncated)[:-1]
    window = tokenize_step(
        obs_spec, act_spec, observations, prev_actions, prev_rewards, prev_done, tgt_bins
    )
    if pad_to is not None and pad_to > T:
        window = window.left_pad(pad_to - T)
    return window


def steps_to_batch(windows: Sequence[Window]) -> Batch:
    """Windows whose rows are different envs' current steps (`tokenize_step` over the envs of
    one spec pair) -> one Batch of all those envs, T = 1, in the order given."""
    fields: dict[str, np.ndarray] = {}
    for f in Window._fields:
        parts = [(getattr(w, f), w.length) for w in windows]
        if f == "image" or parts[0][0] is None:
            continue
        if f in PER_STEP:
            fields[f] = np.concatenate([v[:, None] for v, _ in parts])
        else:  # one value per window: the same for each of its rows
            fields[f] = np.concatenate([np.broadcast_to(v, (n, *v.shape)) for v, n in parts])
    if any(w.image is not None for w in windows):
        fields["image"] = np.concatenate(
            [
                np.zeros((w.length, 1, *IMAGE_SHAPE), np.uint8)
                if w.image is None
                else w.image[:, None]
                for w in windows
            ]
        )
    return Batch(**fields)


def collate(windows: Sequence[Window]) -> Batch:
    """Stack windows of one length into a batch; `image` is zero-filled where a window has none
    (None when no window has one)."""
    if not windows:
        raise SpaceError("collate needs at least one window")
    T = windows[0].length
    if any(w.length != T for w in windows):
        raise SpaceError("collate needs windows of one length; use tokenize_window(pad_to=...)")
    fields = {
        f: np.stack([getattr(w, f) for w in windows])
        for f in Window._fields
        if f != "image" and getattr(windows[0], f) is not None
    }
    if any(w.image is not None for w in windows):
        blank = np.zeros((T, *IMAGE_SHAPE), dtype=np.uint8)
        fields["image"] = np.stack([blank if w.image is None else w.image for w in windows])
    return Batch(**fields)
