"""Held-out accuracy per env, read from a training run's log and set beside the env scores.

Owns: reading the last `val/accuracy/<env>` value of each env from a train directory's
`metrics.jsonl` (the same held-out reference windows at every validation) and attaching it to
evaluation results as `heldout_accuracy`. It reads the log file, never the model.

Must not import: torch, ldm.train, ldm.model (the report is written without them).
"""

from __future__ import annotations

import json
from pathlib import Path

from ldm.eval.results import EvalResult

PREFIX = "val/accuracy/"


def heldout_accuracy(train_dir: str | Path) -> dict[str, float]:
    """env id -> the last held-out action accuracy logged for it ({} without validation)."""
    path = Path(train_dir) / "metrics.jsonl"
    if not path.exists():
        return {}
    last: dict[str, float] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill: the earlier ones stand
            continue
        for key, value in record.items():
            if key.startswith(PREFIX):
                last[key[len(PREFIX) :]] = float(value)
    return last


def attach_heldout_accuracy(results: EvalResult, train_dir: str | Path) -> EvalResult:
    """The results with `heldout_accuracy` set on every env the training run validated on."""
    return results.with_env_values("heldout_accuracy", heldout_accuracy(train_dir))
