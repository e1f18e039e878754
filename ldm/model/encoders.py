"""TransitionEncoder: one token per transition from o_t, a_{t-1}, r_{t-1}, d_{t-1}.

Input: a batch in the `ldm.tokenizer` layout (torch tensors). Each observation dim gets an
embedding (continuous: smooth projection of its mu-law value and/or a per-bin table;
categorical: a category table), plus an embedding of its index; the 128 are concatenated.
The previous action's 28 dims likewise; reward and termination embedded; an image through a
small CNN. Everything is concatenated and projected by one linear layer to the model width.

Two savings that do not change the result: only the obs and action dims some window of the
batch uses are embedded (the others' embeddings are zeros, so their columns of the projection
are skipped), and each distinct frame of a batch goes through the CNN once (a grid world
shows a few dozen distinct frames in thousands; the gradients of repeats add up in the
gather's backward).

Imports torch, ldm.model.config, ldm.spaces' limits and ldm.tokenizer's codes; never the
policy, the data or the envs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ldm.model.config import LDMConfig
from ldm.spaces import IMAGE_SHAPE, MAX_ACT_DIMS, MAX_OBS_DIMS, N_BINS
from ldm.tokenizer import DIM_CATEGORICAL, DIM_CONTINUOUS, DIM_PAD, DONE_START
from ldm.tokens import Batch

N_FOURIER = 4


def fourier(v: torch.Tensor) -> torch.Tensor:
    """(...,) values in [-1, 1] -> (..., 1 + 2 * N_FOURIER) smooth features."""
    k = torch.arange(1, N_FOURIER + 1, device=v.device, dtype=v.dtype) * math.pi
    x = v.unsqueeze(-1) * k
    return torch.cat([v.unsqueeze(-1), torch.sin(x), torch.cos(x)], dim=-1)


class ImageEncoder(nn.Module):
    """(N, 64, 64, 3) uint8 -> (N, image_embed)."""

    def __init__(self, channels: tuple[int, ...], out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = IMAGE_SHAPE[2]
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GELU()]
            c_in = c
        self.conv = nn.Sequential(*layers)
        side = IMAGE_SHAPE[0] // (2 ** len(channels))
        self.proj = nn.Linear(c_in * side * side, out)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Each distinct frame encoded once, then gathered back to the N frames."""
        unique, inverse = distinct_frames(images)
        x = unique.permute(0, 3, 1, 2).float() / 255.0  # (U, 3, 64, 64)
        out = self.proj(self.conv(x).flatten(1))
        return out if inverse is None else out[inverse]


def distinct_frames(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, ...) uint8 frames -> the (U, ...) distinct ones and the (N,) index of each frame
    among them (None when all N are distinct). Exact: frames are compared by their bytes (a
    dict of bytes on CPU: ~4 ms for 640 frames; torch.unique on other devices)."""
    n = images.shape[0]
    if images.device.type != "cpu":
        unique, inverse = torch.unique(images.reshape(n, -1), dim=0, return_inverse=True)
        if unique.shape[0] == n:
            return images, None
        return unique.reshape(-1, *images.shape[1:]), inverse
    first: dict[bytes, int] = {}  # frame bytes -> its index among the distinct frames
    firsts: list[int] = []  # the row of each distinct frame's first appearance
    inverse: list[int] = []
    for i, row in enumerate(images.reshape(n, -1).numpy()):
        j = first.setdefault(row.tobytes(), len(first))
        if j == len(firsts):
            firsts.append(i)
        inverse.append(j)
    if len(firsts) == n:
        return images, None
    return images[torch.tensor(firsts)], torch.tensor(inverse)


class TransitionEncoder(nn.Module):
    def __init__(self, cfg: LDMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e, a, s = cfg.obs_dim_embed, cfg.act_dim_embed, cfg.scalar_embed
        self.obs_pos = nn.Parameter(torch.randn(MAX_OBS_DIMS, e) * 0.02)
        self.obs_cat = nn.Embedding(N_BINS, e)
        self.obs_smooth = nn.Linear(1 + 2 * N_FOURIER, e) if "smooth" in cfg.obs_encoder else None
        self.obs_bins = (
            nn.Embedding(N_BINS, e)
            if "bins" in cfg.obs_encoder or cfg.obs_encoder == "paper"
            else None
        )
        self.act = nn.Embedding(N_BINS, a)
        self.act_pos = nn.Parameter(torch.randn(MAX_ACT_DIMS, a) * 0.02)
        self.reward_bins = nn.Embedding(N_BINS, s)
        self.reward_value = nn.Linear(1 + 2 * N_FOURIER, s)
        self.done = nn.Embedding(4, s)
        self.image = ImageEncoder(cfg.image_channels, cfg.image_embed)
        width = MAX_OBS_DIMS * e + MAX_ACT_DIMS * a + 2 * s + cfg.image_embed
        self.proj = nn.Linear(width, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Batch (B, T, ...) -> tokens (B, T, hidden)."""
        cfg = self.cfg
        K = used_dims(batch.obs_dim_type)  # obs dims >= K are padding in every window
        A = used_dims(batch.act_dim_type)
        bins = batch.obs_bins[..., :K].long()  # (B, T, K)
        values = batch.obs_values[..., :K].float()  # (B, T, K)
        dim_type = batch.obs_dim_type[:, None, :K].long()  # (B, 1, K)
        B, T, _ = bins.shape
        if self.training and cfg.bin_jitter > 0:
            shift = torch.randint(
                -cfg.bin_jitter, cfg.bin_jitter + 1, bins.shape, device=bins.device
            )
            bins = torch.where(
                dim_type == DIM_CONTINUOUS, (bins + shift).clamp(0, N_BINS - 1), bins
            )
            values = torch.where(
                dim_type == DIM_CONTINUOUS, (values + shift * (2.0 / N_BINS)).clamp(-1, 1), values
            )
        cont = torch.zeros(B, T, K, cfg.obs_dim_embed, device=bins.device)
        if self.obs_smooth is not None:
            cont = cont + self.obs_smooth(fourier(values))
        if self.obs_bins is not None:
            cont = cont + self.obs_bins(bins)
        is_cont = (dim_type == DIM_CONTINUOUS).unsqueeze(-1)
        is_cat = (dim_type == DIM_CATEGORICAL).unsqueeze(-1)
        obs = torch.where(
            is_cont, cont, torch.where(is_cat, self.obs_cat(bins), torch.zeros_like(cont))
        )
        obs = (obs + self.obs_pos[:K] * (is_cont | is_cat)).flatten(2)  # (B, T, K * e)

        act_valid = (batch.act_dim_type[:, :A].long() != 0)[:, None, :, None]  # (B, 1, A, 1)
        act = (self.act(batch.prev_actions[..., :A].long()) + self.act_pos[:A]) * act_valid
        first = batch.prev_done.long() == DONE_START  # start of context: no previous action
        keep = ~first
        if self.training and cfg.prev_action_dropout > 0:
            keep = keep & (torch.rand(B, T, device=bins.device) >= cfg.prev_action_dropout)
        act = (act * keep[..., None, None]).flatten(2)  # (B, T, A * a)

        rew = self.reward_bins(batch.prev_rewards.long()) + self.reward_value(
            fourier(batch.prev_reward_values.float())
        )
        done = self.done(batch.prev_done.long())
        img = torch.zeros(B, T, cfg.image_embed, device=bins.device)
        if batch.image is not None and bool(batch.has_image.any()):
            which = batch.has_image.bool()
            frames = batch.image[which]  # (Bi, T, 64, 64, 3)
            enc = self.image(frames.reshape(-1, *frames.shape[2:])).reshape(frames.shape[0], T, -1)
            img = img.index_put((which.nonzero(as_tuple=True)[0],), enc)
        tokens = torch.cat([obs, act, rew, done, img], dim=-1)
        return self.drop(nn.functional.linear(tokens, self._proj_weight(K, A), self.proj.bias))

    def _proj_weight(self, obs_dims: int, act_dims: int) -> torch.Tensor:
        """The projection's columns of the first `obs_dims` obs dims, the first `act_dims`
        action dims and the rest (the columns of padded dims would multiply zeros)."""
        w, e, a = self.proj.weight, self.cfg.obs_dim_embed, self.cfg.act_dim_embed
        if obs_dims == MAX_OBS_DIMS and act_dims == MAX_ACT_DIMS:
            return w
        act0 = MAX_OBS_DIMS * e
        rest = act0 + MAX_ACT_DIMS * a
        return torch.cat([w[:, : obs_dims * e], w[:, act0 : act0 + act_dims * a], w[:, rest:]], 1)


def used_dims(dim_type: torch.Tensor) -> int:
    """1 + the last dim that is not padding in any row of a (B, D) dim-type tensor (0: none)."""
    used = (dim_type != DIM_PAD).any(0).nonzero()
    return int(used.max()) + 1 if used.numel() else 0
