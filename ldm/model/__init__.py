"""The LDM policy: tokens -> transition encoder -> Llama backbone -> masked action head.

`LDMConfig`, `PRESETS` and `preset` are importable without torch (configs are validated by
`ldm run --dry-run` and the CLIs before any model is built); `LDMPolicy` and
`parameter_counts` import torch and transformers on first use. Imports `ldm.tokenizer`,
`ldm.tokens`, `ldm.spaces`; never `ldm.envs`, `ldm.train` or `ldm.eval`.
"""

from typing import Any

from ldm.model.config import PRESETS, LDMConfig, preset

__all__ = ["LDMConfig", "LDMPolicy", "PRESETS", "preset", "parameter_counts"]


def __getattr__(name: str) -> Any:
    if name in ("LDMPolicy", "parameter_counts"):
        from ldm.model import policy

        return getattr(policy, name)
    raise AttributeError(f"module 'ldm.model' has no attribute {name!r}")
