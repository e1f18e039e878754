"""LDMConfig and the presets (builders in a dict, as torchtune does).

The paper fixes the 308M model's depth, heads and width (12, 12, 768) but not its MLP width
or embedding sizes; ours are chosen so that each preset's parameter count is within 10% of its
name (checked by tests/model/test_policy.py::test_presets_parameter_counts_match_their_names).
Imports only the standard library and `ldm.errors`: configs are read without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from ldm.errors import ModelError

ObsEncoder = Literal["smooth", "paper", "smooth+bins"]
OBS_ENCODERS: tuple[str, ...] = get_args(ObsEncoder)
#: the policy's parts, its submodules' names (ldm/model/policy.py): what a fine-tuning can
#: take from a checkpoint alone (`TrainConfig.init_parts`)
MODEL_PARTS: tuple[str, ...] = ("encoder", "backbone", "head")


@dataclass(frozen=True)
class LDMConfig:
    """Shape and options of an LDM policy."""

    hidden: int = 128
    """Width of the transformer (and of each transition token)."""
    layers: int = 2
    """Decoder layers of the Llama backbone."""
    heads: int = 4
    """Attention heads."""
    kv_heads: int | None = None
    """Key/value heads (grouped-query attention); None = heads."""
    intermediate: int = 512
    """Width of the Llama MLP."""
    context: int = 256
    """Transitions the model sees at once (training window and acting context)."""
    obs_encoder: ObsEncoder = "smooth"
    """How continuous observation dims are embedded: "smooth" (a learned projection of each
    dim's mu-law value), "paper" (an embedding table per bin, as LDM-v0), or "smooth+bins"."""
    obs_dim_embed: int = 8
    """Embedding size of one observation dim (128 of them are concatenated)."""
    act_dim_embed: int = 8
    """Embedding size of one previous-action dim (28 of them are concatenated)."""
    scalar_embed: int = 16
    """Embedding size of the previous reward and of the previous termination signal."""
    image_embed: int = 128
    """Output size of the convolutional image encoder."""
    image_channels: tuple[int, ...] = (16, 32, 32)
    """Channels of the image encoder's stride-2 convolutions."""
    dropout: float = 0.0
    """Dropout on the token embeddings (training only)."""
    prev_action_dropout: float = 0.0
    """Probability of hiding the previous action from a token during training."""
    bin_jitter: int = 0
    """Training only: shift continuous observation bins (and values) by up to this many bins."""
    rope_theta: float = 10000.0
    """RoPE base of the Llama backbone."""

    def __post_init__(self) -> None:
        if self.obs_encoder not in OBS_ENCODERS:
            raise ModelError(f"obs_encoder {self.obs_encoder!r} is not one of {OBS_ENCODERS}")
        if self.hidden % self.heads:
            raise ModelError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ModelError(f"heads ({self.heads}) must be divisible by kv_heads ({kv})")
        for name in (
            "hidden",
            "layers",
            "heads",
            "intermediate",
            "context",
            "obs_dim_embed",
            "act_dim_embed",
        ):
            if getattr(self, name) < 1:
                raise ModelError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.prev_action_dropout < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ModelError("dropout probabilities must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_channels"] = list(self.image_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LDMConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelError(f"model config has unknown fields {sorted(unknown)}")
        d = dict(d)
        if "image_channels" in d:
            d["image_channels"] = tuple(d["image_channels"])
        return cls(**d)


def ldm_tiny() -> LDMConfig:
    return LDMConfig(
        hidden=64,
        layers=2,
        heads=4,
        intermediate=256,
        context=256,
        obs_dim_embed=4,
        act_dim_embed=4,
    )


def ldm_small() -> LDMConfig:
    """A CPU preset for the quickstart (~5M)."""
    return LDMConfig(
        hidden=128,
        layers=4,
        heads=4,
        intermediate=512,
        context=256,
        obs_dim_embed=8,
        act_dim_embed=8,
    )


def ldm_32m() -> LDMConfig:
    return LDMConfig(
        hidden=512,
        layers=6,
        heads=8,
        intermediate=1024,
        context=2048,
        obs_dim_embed=8,
        act_dim_embed=8,
        image_embed=256,
    )


def ldm_70m() -> LDMConfig:
    return LDMConfig(
        hidden=640,
        layers=8,
        heads=10,
        intermediate=2560,
        context=2048,
        obs_dim_embed=8,
        act_dim_embed=8,
        image_embed=256,
    )


def ldm_308m() -> LDMConfig:
    return LDMConfig(
        hidden=768,
        layers=12,
        heads=12,
        intermediate=8960,
        context=2048,
        obs_dim_embed=16,
        act_dim_embed=16,
        scalar_embed=32,
        image_embed=512,
        image_channels=(32, 64, 64),
    )


def ldm_736m() -> LDMConfig:
    return LDMConfig(
        hidden=1024,
        layers=24,
        heads=16,
        intermediate=7680,
        context=2048,
        obs_dim_embed=16,
        act_dim_embed=16,
        scalar_embed=32,
        image_embed=512,
        image_channels=(32, 64, 64),
    )


PRESETS: dict[str, Callable[[], LDMConfig]] = {
    "ldm-tiny": ldm_tiny,
    "ldm-small": ldm_small,
    "ldm-32m": ldm_32m,
    "ldm-70m": ldm_70m,
    "ldm-308m": ldm_308m,
    "ldm-736m": ldm_736m,
}


def preset(name: str, **overrides: Any) -> LDMConfig:
    """A preset's config, with fields overridden (validated)."""
    if name not in PRESETS:
        raise ModelError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return LDMConfig.from_dict({**PRESETS[name]().to_dict(), **overrides})
