"""Pipeline state: which stages of an output directory are finished, written atomically.

`OUT/pipeline.json` holds, per stage, when it finished and how long it took (a `StageRecord`),
and which config ran there (`RunSource`). A stage is marked done only after its own function
returned; every stage function is itself resumable, so an interrupted stage is simply called
again. `PipelineState` owns the file: its records are frozen, the file's form is the one
`ldm run` has always written, and a key it does not know is named.

Imports only the standard library, `ldm.atomic` and `ldm.errors`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ldm.atomic import write_json_atomic
from ldm.errors import ConfigError, known_keys

Stage = Literal["refgen", "train", "eval"]
STAGES: tuple[Stage, ...] = get_args(Stage)


@dataclass(frozen=True)
class StageRecord:
    """A finished stage."""

    done: bool
    seconds: float
    """Wall-clock seconds the stage took (rounded to 0.1)."""
    finished: float
    """When it finished (seconds since the epoch)."""
    summary: dict[str, str] = field(default_factory=dict)
    """What the stage reports, e.g. the checkpoint it wrote or the evaluation's headline."""

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"done": self.done, "seconds": self.seconds, "finished": self.finished}
        return {**d, "summary": dict(self.summary)} if self.summary else d

    @classmethod
    def from_json(cls, d: dict[str, Any], stage: str = "?") -> StageRecord:
        known_keys(cls, d, f"pipeline.json: stage {stage!r}", ConfigError)
        return cls(**d)


@dataclass(frozen=True)
class RunSource:
    """The pipeline config that ran in the directory."""

    name: str
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path} if self.path else {"name": self.name}


class PipelineState:
    """The finished stages of one pipeline output directory (`OUT/pipeline.json`)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.path = self.out / "pipeline.json"
        self.stages: dict[str, StageRecord] = {}
        self.source: RunSource | None = None
        if self.path.exists():
            data = json.loads(self.path.read_text())
            unknown = set(data) - {"stages", "config"}
            if unknown:
                raise ConfigError(f"{self.path} has unknown keys {sorted(unknown)}")
            self.stages = {
                s: StageRecord.from_json(d, s) for s, d in data.get("stages", {}).items()
            }
            if "config" in data:
                known_keys(RunSource, data["config"], f"{self.path}: config", ConfigError)
                self.source = RunSource(**data["config"])

    def stage(self, stage: str) -> StageRecord | None:
        return self.stages.get(stage)

    def done(self, stage: str) -> bool:
        record = self.stages.get(stage)
        return record is not None and record.done

    def seconds(self, stage: str) -> float | None:
        record = self.stages.get(stage)
        return None if record is None else record.seconds

    def mark_done(self, stage: str, seconds: float, summary: dict[str, str] | None = None) -> None:
        self.stages[stage] = StageRecord(True, round(seconds, 1), time.time(), dict(summary or {}))
        self._write()

    def clear_from(self, stage: str) -> list[str]:
        """Forget `stage` and every later one; returns the stages cleared."""
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} is not one of {STAGES}")
        cleared = list(STAGES[STAGES.index(stage) :])  # type: ignore[arg-type]
        for s in cleared:
            self.stages.pop(s, None)
        self._write()
        return cleared

    def set_source(self, source: RunSource) -> None:
        self.source = source
        self._write()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"stages": {s: r.to_json() for s, r in self.stages.items()}}
        return d if self.source is None else {**d, "config": self.source.to_json()}

    def _write(self) -> None:
        write_json_atomic(self.path, self.to_json(), indent=2)
