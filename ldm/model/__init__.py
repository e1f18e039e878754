"""The LDM policy: tokens -> transition encoder -> Llama backbone -> masked action head."""

from ldm.model.config import PRESETS, LDMConfig, preset
from ldm.model.policy import LDMPolicy, parameter_counts

__all__ = ["LDMConfig", "LDMPolicy", "PRESETS", "preset", "parameter_counts"]
