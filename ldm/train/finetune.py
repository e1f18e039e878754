"""Fine-tuning settings: a `TrainConfig` that starts from a checkpoint, built from that
checkpoint's own model config.

`finetune_config(checkpoint, ...)` reads the checkpoint's `config.json` (no weights), sets the
model to exactly its config (so the weights load and resuming checks the same model), the
window to the one it was trained with, and restricts the data to the chosen envs and their
first K reference episodes. The training loop (`ldm.train.loop.train`) runs it like any run:
checkpoints, exact resume, the final model; `init_from` and `lora` are handled in setup.py.

Imports ldm.train.config and ldm.model.card/config (no torch); never the loop or ldm.eval.
"""

from __future__ import annotations

import json
from typing import Any

from ldm.errors import ModelError, TrainError
from ldm.model.card import facts_from_json, preset_name, resolve_checkpoint
from ldm.model.config import PRESETS, LDMConfig
from ldm.train.config import TrainConfig


def finetune_config(
    checkpoint: str, store: str, envs: list[str], episodes: int | None, out: str, **settings: Any
) -> TrainConfig:
    """The TrainConfig of fine-tuning `checkpoint` (a folder or Hub id) on `envs` of `store`,
    the first `episodes` reference episodes of each; `settings`: any other TrainConfig field."""
    try:
        base = resolve_checkpoint(checkpoint)
        meta = json.loads((base / "config.json").read_text())
        model = LDMConfig.from_dict(meta["config"])
    except (OSError, KeyError, json.JSONDecodeError, ModelError) as e:
        raise TrainError(
            f"{checkpoint} is not a readable LDM checkpoint ({type(e).__name__}: {e}); pass a "
            "folder written by `ldm train` (e.g. runs/train/final) or a Hub id"
        ) from None
    if not envs:
        raise TrainError("name the envs to fine-tune on: --envs ENV_ID [ENV_ID ...]")
    name = preset_name(model)
    training, _ = facts_from_json(meta.get("card"))
    window = settings.pop("window", None) or (training.window if training else None) or None
    return TrainConfig(
        store=store,
        out=out,
        preset=name if name in PRESETS else "ldm-tiny",
        model=model.to_dict(),  # every field: the preset is only where the overrides start
        window=window,
        envs=list(envs),
        episodes=episodes,
        init_from=str(base),
        **settings,
    )
