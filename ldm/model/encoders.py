"""TransitionEncoder: one token per transition from o_t, a_{t-1}, r_{t-1}, d_{t-1}.

Input: a batch in the `ldm.tokenizer` layout (torch tensors). Each observation dim gets an
embedding (continuous: smooth projection of its mu-law value and/or a per-bin table;
categorical: a category table), plus an embedding of its index; the 128 are concatenated.
The previous action's 28 dims likewise; reward and termination embedded; an image through a
small CNN. Everything is concatenated and projected by one linear layer to the model width.

Imports torch, ldm.model.config, ldm.spaces' limits and ldm.tokenizer's codes; never the
policy, the data or the envs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ldm.model.config import LDMConfig
from ldm.spaces import IMAGE_SHAPE, MAX_ACT_DIMS, MAX_OBS_DIMS, N_BINS
from ldm.tokenizer import DIM_CATEGORICAL, DIM_CONTINUOUS, DONE_START
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
        x = images.permute(0, 3, 1, 2).float() / 255.0  # (N, 3, 64, 64)
        return self.proj(self.conv(x).flatten(1))


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
        bins = batch.obs_bins.long()  # (B, T, 128)
        values = batch.obs_values.float()  # (B, T, 128)
        dim_type = batch.obs_dim_type.long()[:, None, :]  # (B, 1, 128)
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
        cont = torch.zeros(B, T, MAX_OBS_DIMS, cfg.obs_dim_embed, device=bins.device)
        if self.obs_smooth is not None:
            cont = cont + self.obs_smooth(fourier(values))
        if self.obs_bins is not None:
            cont = cont + self.obs_bins(bins)
        is_cont = (dim_type == DIM_CONTINUOUS).unsqueeze(-1)
        is_cat = (dim_type == DIM_CATEGORICAL).unsqueeze(-1)
        obs = torch.where(
            is_cont, cont, torch.where(is_cat, self.obs_cat(bins), torch.zeros_like(cont))
        )
        obs = (obs + self.obs_pos * (is_cont | is_cat)).flatten(2)  # (B, T, 128 * e)

        act_valid = (batch.act_dim_type.long() != 0)[:, None, :, None]  # (B, 1, 28, 1)
        act = (self.act(batch.prev_actions.long()) + self.act_pos) * act_valid
        first = batch.prev_done.long() == DONE_START  # start of context: no previous action
        keep = ~first
        if self.training and cfg.prev_action_dropout > 0:
            keep = keep & (torch.rand(B, T, device=bins.device) >= cfg.prev_action_dropout)
        act = (act * keep[..., None, None]).flatten(2)  # (B, T, 28 * a)

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
        return self.drop(self.proj(tokens))
