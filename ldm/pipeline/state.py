"""Pipeline state: which stages of an output directory are finished, written atomically.

`OUT/pipeline.json` holds, per stage, when it finished and how long it took. A stage is
marked done only after its own function returned; every stage function is itself
resumable, so an interrupted stage is simply called again. Imports only the standard library
and `ldm.atomic`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ldm.atomic import write_json_atomic

STAGES: tuple[str, ...] = ("refgen", "train", "eval")


class PipelineState:
    """The finished stages of one pipeline output directory."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.path = self.out / "pipeline.json"
        self.data: dict[str, Any] = {"stages": {}}
        if self.path.exists():
            self.data = json.loads(self.path.read_text())

    def done(self, stage: str) -> bool:
        return bool(self.data["stages"].get(stage, {}).get("done"))

    def seconds(self, stage: str) -> float | None:
        return self.data["stages"].get(stage, {}).get("seconds")

    def mark_done(self, stage: str, seconds: float, summary: dict[str, Any] | None = None) -> None:
        entry = {"done": True, "seconds": round(seconds, 1), "finished": time.time()}
        if summary:
            entry["summary"] = summary
        self.data["stages"][stage] = entry
        write_json_atomic(self.path, self.data, indent=2)

    def clear_from(self, stage: str) -> list[str]:
        """Forget `stage` and every later one; returns the stages cleared."""
        cleared = list(STAGES[STAGES.index(stage) :])
        for s in cleared:
            self.data["stages"].pop(s, None)
        write_json_atomic(self.path, self.data, indent=2)
        return cleared

    def set_config(self, config: dict[str, Any]) -> None:
        self.data["config"] = config
        write_json_atomic(self.path, self.data, indent=2)
