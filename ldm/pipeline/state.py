"""Pipeline state: which stages of an output directory are finished, written atomically.

`OUT/pipeline.json` holds, per stage, when it finished and how long it took (a `StageRecord`),
and which config ran there (`RunSource`). A stage is marked done only after its own function
returned; every stage function is itself resumable, so an interrupted stage is simply called
again. Its seconds add up over every attempt (`clock`: the record of an unfinished stage is
brought up to date every `TICK` seconds, so even a killed attempt's time is kept to within a
tick), so a run that spans interruptions reports the time it really took. `PipelineState` owns the file: its records are frozen, the file's form is the one
`ldm run` has always written, and a key it does not know is named.

Imports only the standard library, `ldm.atomic` and `ldm.errors`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ldm.atomic import write_json_atomic
from ldm.errors import ConfigError, known_keys

Stage = Literal["refgen", "train", "eval", "unseen", "heldout", "adapt"]
STAGES: tuple[Stage, ...] = get_args(Stage)
TICK = 30.0
"""Seconds between updates of a running stage's time in pipeline.json."""


@dataclass(frozen=True)
class StageRecord:
    """A finished stage."""

    done: bool
    seconds: float
    """Wall-clock seconds the stage took over all its attempts (rounded to 0.1); of an
    unfinished stage, what its attempts took so far."""
    finished: float
    """When it finished (seconds since the epoch)."""
    summary: dict[str, str] = field(default_factory=dict)
    """What the stage reports, e.g. the checkpoint it wrote or the evaluation's headline."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"done": self.done, "seconds": self.seconds, "finished": self.finished}
        return {**d, "summary": dict(self.summary)} if self.summary else d

    @classmethod
    def from_dict(cls, d: dict[str, Any], stage: str = "?") -> StageRecord:
        known_keys(cls, d, f"pipeline.json: stage {stage!r}", ConfigError)
        return cls(**d)


@dataclass(frozen=True)
class RunSource:
    """The pipeline config that ran in the directory."""

    name: str
    path: str = ""
    profile: str | None = None
    """The `--profile` it ran with (None: none; older records hold none)."""

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "path": self.path} if self.path else {"name": self.name}
        return d if self.profile is None else {**d, "profile": self.profile}


class PipelineState:
    """The finished stages of one pipeline output directory (`OUT/pipeline.json`)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.path = self.out / "pipeline.json"
        self.stages: dict[str, StageRecord] = {}
        self.source: RunSource | None = None
        self._lock = threading.RLock()  # a stage's clock writes from its own thread
        if self.path.exists():
            data = json.loads(self.path.read_text())
            unknown = set(data) - {"stages", "config"}
            if unknown:
                raise ConfigError(f"{self.path} has unknown keys {sorted(unknown)}")
            self.stages = {
                s: StageRecord.from_dict(d, s) for s, d in data.get("stages", {}).items()
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
        """`stage` finished; `seconds` is its last attempt's time, added to the earlier ones'."""
        with self._lock:
            self._finish(stage, self._spent(stage) + seconds, summary)

    def _finish(self, stage: str, total: float, summary: dict[str, str] | None) -> None:
        with self._lock:
            record = StageRecord(True, round(total, 1), time.time(), dict(summary or {}))
            self.stages[stage] = record
            self._write()

    @contextmanager
    def clock(self, stage: str, tick: float = TICK) -> Iterator[Callable[..., None]]:
        """Count the time of an attempt at `stage` into its record while it runs (every
        `tick` seconds and when it ends, also by an exception). Yields `done(summary=None)`,
        which marks the stage done with the attempt's time so far (the block is the attempt)."""
        before, start = self._spent(stage), time.time()
        stop = threading.Event()

        def update() -> None:
            with self._lock:
                if not self.done(stage):
                    spent = round(before + time.time() - start, 1)
                    self.stages[stage] = StageRecord(False, spent, time.time())
                    self._write()

        def ticker() -> None:
            while not stop.wait(tick):
                update()

        thread = threading.Thread(target=ticker, name=f"clock-{stage}", daemon=True)
        thread.start()
        try:
            # the total from the earlier attempts' time read at the start: the record holds
            # this attempt's ticks too by now, so adding to it would count them twice
            yield lambda summary=None: self._finish(stage, before + time.time() - start, summary)
        finally:
            stop.set()
            thread.join()
            update()

    def _spent(self, stage: str) -> float:
        """Seconds the unfinished `stage`'s earlier attempts took (0 when done or new)."""
        record = self.stages.get(stage)
        return 0.0 if record is None or record.done else record.seconds

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

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"stages": {s: r.to_dict() for s, r in self.stages.items()}}
        return d if self.source is None else {**d, "config": self.source.to_dict()}

    def _write(self) -> None:
        with self._lock:
            write_json_atomic(self.path, self.to_dict(), indent=2)
