"""MetricsLog: training scalars to TensorBoard and OUT/metrics.jsonl, on rank 0 only.

It only writes what it is given (it never runs the model). Imports torch's TensorBoard
writer lazily; nothing else of ldm.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class MetricsLog:
    """Scalars by step; a no-op on ranks other than 0."""

    def __init__(self, out: Path, active: bool) -> None:
        self.active = active
        self.tb: Any = None
        if active:
            out.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "logs"))
            self.jsonl = open(out / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Record `values` at `step` (one metrics.jsonl line, one TensorBoard point each)."""
        if not self.active:
            return
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)
        self.jsonl.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
        self.jsonl.flush()

    def close(self) -> None:
        if self.active and self.tb is not None:
            self.tb.close()
            self.jsonl.close()
