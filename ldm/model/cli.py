"""`ldm model summary`: parameter count and per-part breakdown of a preset.

Imports tyro; ldm.model inside the command. Never ldm.data, ldm.train or ldm.eval.
"""

from __future__ import annotations

import json
from typing import Annotated

import tyro


def summary(
    preset: str = "ldm-tiny", json_: Annotated[bool, tyro.conf.arg(name="json")] = False
) -> int:
    """Print a preset's parameter count and per-part breakdown (built on the meta device).

    Args:
        preset: Preset name (ldm-tiny, ldm-small, ldm-32m, ldm-70m, ldm-308m, ldm-736m).
        json_: Print JSON (key `params` holds the total).
    """
    from ldm.model import parameter_counts
    from ldm.model import preset as get_preset

    cfg = get_preset(preset)
    parts = parameter_counts(cfg)
    out = {"preset": preset, "params": sum(parts.values()), "parts": parts, "config": cfg.to_dict()}
    if json_:
        print(json.dumps(out))
    else:
        print(f"{preset}: {out['params'] / 1e6:.1f}M parameters")
        for name, n in parts.items():
            print(f"  {name:<10} {n / 1e6:8.2f}M")
    return 0


COMMANDS = {"summary": summary}
