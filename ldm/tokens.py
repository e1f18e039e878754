"""The model's input records: `Window` (one env's T transitions) and `Batch` (B windows).

These are what crosses from the tokenizer (run by the store's loader and by acting) to the
model; a misspelt field is an AttributeError where it is made. T = window length, B = batch
size; a `Batch` has the same fields as a `Window` with a leading B, as numpy arrays
(`collate`) or torch tensors (`Batch.to`).

| field              | Window shape   | dtype   | meaning                                          |
| ------------------ | -------------- | ------- | ------------------------------------------------ |
| obs_bins           | (T, 128)       | int16   | bin or category of each obs dim (0 in padding)   |
| obs_values         | (T, 128)       | float32 | mu-law value of continuous obs dims, else 0      |
| obs_dim_type       | (128,)         | int8    | DIM_PAD / DIM_CONTINUOUS / DIM_CATEGORICAL       |
| has_image          | ()             | bool    | whether `image` holds real frames                |
| prev_actions       | (T, 28)        | int16   | bins of a_{t-1} (action taken), 0 where padded   |
| prev_rewards       | (T,)           | int16   | bin of r_{t-1}                                   |
| prev_reward_values | (T,)           | float32 | mu-law value of r_{t-1}                          |
| prev_done          | (T,)           | int8    | DONE_NONE / TERMINATED / TRUNCATED / START       |
| targets            | (T, 28)        | int16   | bins of the reference action at t                |
| act_dim_type       | (28,)          | int8    | DIM_PAD / DIM_CONTINUOUS / DIM_CATEGORICAL       |
| act_n              | (28,)          | int16   | valid bins per action dim (0 for padded dims)    |
| loss_mask          | (T,)           | bool    | False on padding positions                       |
| image              | (T, 64, 64, 3) | uint8   | None when no window of the batch has images      |
| env_index          | ()             | int64   | the sampler's env index (None outside training)  |

Imports numpy only; torch is imported inside `Batch.to` (the store's loader and the env hub
must not pull it in).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

#: What a field holds: a numpy array, or a torch tensor once a Batch is moved with `to`.
Array = Any

#: How a deterministic action is read from the predicted bins of a continuous action dim:
#: the median of the predicted distribution (the default), or the most likely bin (categorical
#: dims always take the most likely category). The decoders are ldm/model/acting.py's DECODERS.
ActionDecoding = Literal["argmax", "median"]

#: Fields with a per-step axis (T): padded on the left when a window starts a stream.
PER_STEP = (
    "obs_bins",
    "obs_values",
    "prev_actions",
    "prev_rewards",
    "prev_reward_values",
    "prev_done",
    "targets",
    "loss_mask",
    "image",
)


class Window(NamedTuple):
    """T consecutive transitions of one env, tokenized (shapes in the module table)."""

    obs_bins: Array  # (T, 128) int16
    obs_values: Array  # (T, 128) float32
    obs_dim_type: Array  # (128,) int8
    has_image: Array  # () bool
    prev_actions: Array  # (T, 28) int16
    prev_rewards: Array  # (T,) int16
    prev_reward_values: Array  # (T,) float32
    prev_done: Array  # (T,) int8
    targets: Array  # (T, 28) int16
    act_dim_type: Array  # (28,) int8
    act_n: Array  # (28,) int16
    loss_mask: Array  # (T,) bool
    image: Array | None = None  # (T, 64, 64, 3) uint8
    env_index: Array | None = None  # () int64

    @property
    def length(self) -> int:
        """T, the number of tokens."""
        return len(self.loss_mask)

    def left_pad(self, n: int) -> Window:
        """The window with `n` zero tokens in front (zero loss_mask: out of the loss)."""
        pad = {
            f: np.concatenate([np.zeros((n, *a.shape[1:]), dtype=a.dtype), a])
            for f in PER_STEP
            if (a := getattr(self, f)) is not None
        }
        return self._replace(**pad)


class Batch(NamedTuple):
    """B windows of one length T stacked: every Window field with a leading B."""

    obs_bins: Array  # (B, T, 128) int16
    obs_values: Array  # (B, T, 128) float32
    obs_dim_type: Array  # (B, 128) int8
    has_image: Array  # (B,) bool
    prev_actions: Array  # (B, T, 28) int16
    prev_rewards: Array  # (B, T) int16
    prev_reward_values: Array  # (B, T) float32
    prev_done: Array  # (B, T) int8
    targets: Array  # (B, T, 28) int16
    act_dim_type: Array  # (B, 28) int8
    act_n: Array  # (B, 28) int16
    loss_mask: Array  # (B, T) bool
    image: Array | None = None  # (B, T, 64, 64, 3) uint8; None when no window has one
    env_index: Array | None = None  # (B,) int64

    def map(self, fn: Any) -> Batch:
        """The batch with `fn` applied to every field that is present."""
        return Batch(*(None if v is None else fn(v) for v in self))

    def to(self, device: Any = "cpu") -> Batch:
        """Torch tensors on `device` (from numpy arrays or tensors)."""
        import torch

        return self.map(lambda v: torch.as_tensor(v).to(device))

    def select(self, rows: Any) -> Batch:
        """The windows picked by `rows` (a boolean mask or indices over B)."""
        return self.map(lambda v: v[rows])
