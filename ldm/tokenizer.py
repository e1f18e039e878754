"""Tokenizer: environment arrays -> the model's input layout, driven only by SpaceSpec.

This is the contract between the trajectory store's loader (which tokenizes in its worker
processes), the model, training and evaluation. Pure numpy; imports only `ldm.spaces`.

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

Window layout (one window = dict of arrays, T = window length; `collate` stacks to B):

| key            | shape          | dtype   | meaning                                             |
| -------------- | -------------- | ------- | --------------------------------------------------- |
| obs_bins       | (T, 128)       | int16   | bin or category of each obs dim (0 in padding)      |
| obs_values     | (T, 128)       | float32 | mu-law value of continuous obs dims, else 0         |
| obs_dim_type   | (128,)         | int8    | DIM_PAD / DIM_CONTINUOUS / DIM_CATEGORICAL          |
| image          | (T, 64, 64, 3) | uint8   | present only for image observations                 |
| has_image      | ()             | bool    | whether `image` holds real frames                   |
| prev_actions   | (T, 28)        | int16   | bins of a_{t-1} (action taken), 0 where padded      |
| prev_rewards   | (T,)           | int16   | bin of r_{t-1}                                      |
| prev_reward_values | (T,)       | float32 | mu-law value of r_{t-1}                             |
| prev_done      | (T,)           | int8    | DONE_NONE / DONE_TERMINATED / DONE_TRUNCATED / START |
| targets        | (T, 28)        | int16   | bins of the reference action at t                   |
| act_dim_type   | (28,)          | int8    | DIM_PAD / DIM_CONTINUOUS / DIM_CATEGORICAL          |
| act_n          | (28,)          | int16   | valid bins per action dim (0 for padded dims)       |
| loss_mask      | (T,)           | bool    | False on padding positions                          |
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ldm.errors import SpaceError
from ldm.spaces import IMAGE_SHAPE, MAX_ACT_DIMS, MAX_OBS_DIMS, N_BINS, SpaceSpec

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


# -- per-space layout ------------------------------------------------------------------------
def obs_dim_type(spec: SpaceSpec) -> np.ndarray:
    """(MAX_OBS_DIMS,) int8: the type of each padded observation dim."""
    t = np.zeros(MAX_OBS_DIMS, dtype=np.int8)
    kind = DIM_CONTINUOUS if spec.kind == "continuous" else DIM_CATEGORICAL
    if spec.kind != "image":
        _check_dims(spec.flat_dim, MAX_OBS_DIMS, "observation", spec)
        t[: spec.flat_dim] = kind
    return t


def act_layout(spec: SpaceSpec) -> tuple[np.ndarray, np.ndarray]:
    """(act_dim_type, act_n): per padded action dim, its type and its number of valid bins."""
    if spec.kind == "image":
        raise SpaceError("image action spaces are not supported")
    _check_dims(spec.flat_dim, MAX_ACT_DIMS, "action", spec)
    t = np.zeros(MAX_ACT_DIMS, dtype=np.int8)
    n = np.zeros(MAX_ACT_DIMS, dtype=np.int16)
    t[: spec.flat_dim] = DIM_CONTINUOUS if spec.kind == "continuous" else DIM_CATEGORICAL
    n[: spec.flat_dim] = spec.categories
    return t, n


def _check_dims(dims: int, limit: int, role: str, spec: SpaceSpec) -> None:
    if dims > limit:
        raise SpaceError(f"{role} space {spec.describe()} has {dims} dims, over the limit {limit}")


# -- observations ----------------------------------------------------------------------------
def encode_observations(
    spec: SpaceSpec, obs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(T, *shape) observations -> (obs_bins (T,128) int16, obs_values (T,128) f32, image|None)."""
    obs = _finite(obs, "observation")
    T = obs.shape[0]
    bins = np.zeros((T, MAX_OBS_DIMS), dtype=np.int16)
    values = np.zeros((T, MAX_OBS_DIMS), dtype=np.float32)
    if spec.kind == "image":
        return bins, values, resize_images(obs)
    flat = obs.reshape(T, -1)
    d = flat.shape[1]
    _check_dims(d, MAX_OBS_DIMS, "observation", spec)
    if spec.kind == "continuous":
        y = mu_law(flat)
        bins[:, :d] = uniform_bins(y)
        values[:, :d] = y
    else:
        bins[:, :d] = _categories(spec, flat, "observation")
    return bins, values, None


def _categories(spec: SpaceSpec, flat: np.ndarray, what: str) -> np.ndarray:
    idx = flat.astype(np.int64) - (spec.start if spec.kind == "discrete" else 0)
    cats = np.asarray(spec.categories)
    if np.any(idx < 0) or np.any(idx >= cats[None, : idx.shape[1]]):
        raise SpaceError(f"{what} value outside its space {spec.describe()}: {flat[:1]}")
    return idx.astype(np.int16)


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
    T = actions.shape[0]
    flat = actions.reshape(T, -1)
    d = flat.shape[1]
    _check_dims(d, MAX_ACT_DIMS, "action", spec)
    out = np.zeros((T, MAX_ACT_DIMS), dtype=np.int16)
    if spec.kind == "continuous":
        out[:, :d] = _continuous_action_bins(spec, flat)
    else:
        out[:, :d] = _categories(spec, flat, "action")
    return out


def _continuous_action_bins(spec: SpaceSpec, flat: np.ndarray) -> np.ndarray:
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    bounded = spec.is_bounded
    span = np.where(bounded, high - low, 1.0)
    y_bounded = 2.0 * (flat - np.where(bounded, low, 0.0)) / np.where(span > 0, span, 1.0) - 1.0
    y = np.where(bounded, np.clip(y_bounded, -1.0, 1.0), mu_law(flat))
    return uniform_bins(y)


def decode_actions(spec: SpaceSpec, bins: np.ndarray) -> np.ndarray:
    """(..., 28) bins -> actions in the env's format: (..., *shape) for Box/Multi*, (...) for Discrete.

    Continuous actions decode to bin centres, always inside the bounds.
    """
    bins = np.asarray(bins)
    lead = bins.shape[:-1]
    d = spec.flat_dim
    b = bins[..., :d]
    if spec.kind == "continuous":
        low, high = np.asarray(spec.low), np.asarray(spec.high)
        bounded = spec.is_bounded
        c = bin_centres(b)
        span = np.where(bounded, high - low, 0.0)
        scaled = np.where(
            bounded, np.where(bounded, low, 0.0) + (c + 1.0) / 2.0 * span, inv_mu_law(c)
        )
        return scaled.astype(np.dtype(spec.dtype)).reshape(*lead, *spec.shape)
    if spec.kind == "discrete":
        return (b[..., 0].astype(np.int64) + spec.start).reshape(lead)
    return b.astype(np.dtype(spec.dtype)).reshape(*lead, *spec.shape)


# -- rewards ---------------------------------------------------------------------------------
def encode_rewards(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,) rewards -> (bins int16, mu-law values float32)."""
    r = _finite(np.asarray(rewards, dtype=np.float64), "reward")
    y = mu_law(r)
    return uniform_bins(y), y.astype(np.float32)


# -- windows ---------------------------------------------------------------------------------
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
) -> dict[str, np.ndarray]:
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
    obs_bins, obs_values, image = encode_observations(obs_spec, observations)
    act_bins = encode_actions(act_spec, actions)
    tgt_bins = act_bins if targets is None else encode_actions(act_spec, targets)
    r_bins, r_values = encode_rewards(rewards)
    done = np.where(np.asarray(terminated, bool), DONE_TERMINATED, DONE_NONE)
    done = np.where(
        np.asarray(truncated, bool) & ~np.asarray(terminated, bool), DONE_TRUNCATED, done
    )

    prev_actions = np.zeros_like(act_bins)
    prev_actions[1:] = act_bins[:-1]
    prev_rewards = np.zeros(T, dtype=np.int16)
    prev_rewards[1:] = r_bins[:-1]
    prev_reward_values = np.zeros(T, dtype=np.float32)
    prev_reward_values[1:] = r_values[:-1]
    prev_done = np.full(T, DONE_START, dtype=np.int8)
    prev_done[1:] = done[:-1]

    a_type, a_n = act_layout(act_spec)
    window = {
        "obs_bins": obs_bins,
        "obs_values": obs_values,
        "obs_dim_type": obs_dim_type(obs_spec),
        "has_image": np.asarray(image is not None),
        "prev_actions": prev_actions,
        "prev_rewards": prev_rewards,
        "prev_reward_values": prev_reward_values,
        "prev_done": prev_done,
        "targets": tgt_bins,
        "act_dim_type": a_type,
        "act_n": a_n,
        "loss_mask": np.ones(T, dtype=bool),
    }
    if image is not None:
        window["image"] = image
    if pad_to is not None and pad_to > T:
        window = _left_pad(window, pad_to - T)
    return window


_PER_STEP = (
    "obs_bins",
    "obs_values",
    "image",
    "prev_actions",
    "prev_rewards",
    "prev_reward_values",
    "prev_done",
    "targets",
    "loss_mask",
)


def _left_pad(window: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    out = dict(window)
    for key in _PER_STEP:
        if key in window:
            a = window[key]
            out[key] = np.concatenate([np.zeros((n, *a.shape[1:]), dtype=a.dtype), a])
    return out


def collate(windows: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack windows of one length into a batch; `image` is zero-filled where a window has none."""
    if not windows:
        raise SpaceError("collate needs at least one window")
    T = len(windows[0]["loss_mask"])
    if any(len(w["loss_mask"]) != T for w in windows):
        raise SpaceError("collate needs windows of one length; use tokenize_window(pad_to=...)")
    batch = {k: np.stack([w[k] for w in windows]) for k in windows[0] if k != "image"}
    if any("image" in w for w in windows):
        blank = np.zeros((T, *IMAGE_SHAPE), dtype=np.uint8)
        batch["image"] = np.stack([w.get("image", blank) for w in windows])
    return batch
