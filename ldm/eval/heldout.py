"""Held-out accuracy per env, read from a training run's log and set beside the env scores.

Owns: reading the last `val/accuracy/<env>` value of each env from a train directory's
`metrics.jsonl` (the same held-out reference windows at every validation) and attaching it to
evaluation results as `heldout_accuracy`. It reads the log file, never the model.

Must not import: torch, ldm.train, ldm.model (the report is written without them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def attach_heldout_accuracy(results: dict[str, Any], train_dir: str | Path) -> dict[str, Any]:
    """Set `heldout_accuracy` on every evaluated env the training run validated on."""
    accuracy = heldout_accuracy(train_dir)
    for env in results["envs"]:
        if env["env_id"] in accuracy:
            env["heldout_accuracy"] = accuracy[env["env_id"]]
    return results
