"""MetricsLog: training scalars to TensorBoard and OUT/metrics.jsonl, on rank 0 only.

It only writes what it is given (it never runs the model). Imports torch's TensorBoard
writer lazily; of ldm only ldm.disk (a full disk is a `DiskFullError`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ldm.disk import on_full_disk


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
        line = json.dumps({"step": step, "time": time.time(), **values}) + "\n"
        kept = "the lines before are kept; rerun to resume from the last checkpoint"
        with on_full_disk(self.jsonl.name, len(line), "metrics.jsonl", kept):
            self.jsonl.write(line)
            self.jsonl.flush()

    def close(self) -> None:
        if self.active and self.tb is not None:
            self.tb.close()
            self.jsonl.close()
