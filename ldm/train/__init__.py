"""Training of the LDM policy: one loop from a laptop CPU to multi-GPU DDP (torchrun).

    config.py      TrainConfig (validated on its own; importable without torch)
    setup.py       ranks, data, model, optimizer, resume -> TrainRun
    step.py        one optimizer step; held-out validation
    loop.py        train(): the loop, checkpoints, the final model
    checkpoint.py  atomic checkpoints
    metrics.py     TensorBoard + metrics.jsonl

Imports `ldm.data` and `ldm.model`; never `ldm.eval` (evaluation comes in as a callback).
"""

from typing import Any

from ldm.train.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from ldm.train.loop import train

        return train
    raise AttributeError(f"module 'ldm.train' has no attribute {name!r}")
