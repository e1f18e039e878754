"""Training checkpoints: written to a temp dir and renamed, so a kill during the write leaves
the previous checkpoint usable.

    OUT/checkpoints/step-000200/  model.safetensors + config.json (LDMPolicy.from_pretrained)
                                  state.pt (optimizer, scheduler, RNG, loader, step, counters)
                                  train_config.json

Imports torch, numpy and ldm.errors; the model is passed in (never imported here).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldm.disk import on_full_disk
from ldm.errors import TrainError


def checkpoint_dirs(out: str | Path) -> list[Path]:
    d = Path(out) / "checkpoints"
    return sorted(p for p in d.glob("step-*") if p.is_dir()) if d.exists() else []


def checkpoint_step(path: str | Path) -> int:
    """The step of a checkpoint directory (`step-0000200` -> 200), without reading it."""
    return int(Path(path).name.removeprefix("step-"))


def latest_checkpoint(out: str | Path) -> Path | None:
    dirs = checkpoint_dirs(out)
    return dirs[-1] if dirs else None


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(
    out: str | Path, step: int, model: Any, state: dict[str, Any], config: dict, keep: int = 2
) -> Path:
    """Write checkpoint `step` atomically and prune to the newest `keep`."""
    root = Path(out) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"  # checkpoint_step() reads this name back
    tmp = root / f".tmp-step-{step:07d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    kept = f"the newest complete checkpoint is kept ({latest_checkpoint(out) or 'none yet'})"
    with on_full_disk(root, checkpoint_bytes(out, model), f"checkpoint step {step}", kept):
        try:
            model.save_pretrained(tmp)
            torch.save(state, tmp / "state.pt")
            (tmp / "train_config.json").write_text(json.dumps(config, indent=1, default=str))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # never left to look like a checkpoint
            raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_bytes(out: str | Path, model: Any) -> int:
    """What a checkpoint takes: the newest one's size, else the parameters x 3 (the weights
    and AdamW's two moments)."""
    latest = latest_checkpoint(out)
    if latest is not None:
        return sum(f.stat().st_size for f in latest.rglob("*") if f.is_file())
    return 3 * param_bytes(model)


def param_bytes(model: Any) -> int:
    """Bytes of the model's parameters (what model.safetensors holds)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def load_state(path: Path) -> dict[str, Any]:
    try:
        # our own file, written by save_checkpoint: it holds numpy RNG state, hence not weights_only
        return torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    except Exception as e:
        raise TrainError(
            f"checkpoint {path} cannot be read ({e}); delete it to resume from the one before"
        ) from None


def check_same_model(path: Path, model_config: dict[str, Any]) -> None:
    saved = json.loads((path / "config.json").read_text())["config"]
    if saved != model_config:
        diff = sorted(
            k for k in set(saved) | set(model_config) if saved.get(k) != model_config.get(k)
        )
        raise TrainError(
            f"checkpoint {path} is of another model (differs in {diff}); "
            "use the same preset/overrides, another --out, or --no-resume"
        )
