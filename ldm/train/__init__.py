"""Training of the LDM policy: one loop from a laptop CPU to multi-GPU DDP (torchrun)."""

from ldm.train.config import TrainConfig
from ldm.train.loop import train

__all__ = ["TrainConfig", "train"]
