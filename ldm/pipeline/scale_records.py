"""The scaling study's records: what `OUT/scale.json` holds.

Owns: `ScalePoint` (one evaluated checkpoint), `PresetScale` (one preset's parameter count
and points) and `ScaleResults` (the file: the store and every preset). They are frozen; the
study makes a new one as it evaluates (`ScaleResults.with_point`). `to_dict` writes the
file's long-standing form; `from_dict` reads it and names any key it does not know.

Imports the standard library and ldm.errors; must not import torch, the model or ldm.eval
(the results are read and plotted without them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ldm.atomic import write_json_atomic
from ldm.errors import TrainError, known_keys


@dataclass(frozen=True)
class ScalePoint:
    """One checkpoint of a preset, evaluated by the protocol."""

    step: int
    transitions: int
    """Training transitions seen by the checkpoint (the figure's x axis)."""
    share_at_80: float
    """Share of scorable envs at >= 80% of the reference."""
    share_at_100: float
    median_score: float | None
    scores: dict[str, float | None] = field(default_factory=dict)
    """env -> normalised score (None: not scorable)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScalePoint:
        return cls(**known_keys(cls, d, "scale.json point", TrainError))


@dataclass(frozen=True)
class PresetScale:
    """One preset's run in the study."""

    params: int = 0
    """Parameter count of the preset's model."""
    points: tuple[ScalePoint, ...] = ()
    """Evaluated checkpoints, by step."""

    @property
    def steps(self) -> set[int]:
        return {p.step for p in self.points}

    def to_dict(self) -> dict[str, Any]:
        return {"points": [asdict(p) for p in self.points], "params": self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PresetScale:
        known_keys(cls, d, "scale.json preset", TrainError)
        points = tuple(ScalePoint.from_dict(p) for p in d.get("points", ()))
        return cls(int(d.get("params", 0)), points)


@dataclass(frozen=True)
class ScaleResults:
    """`OUT/scale.json`: the store the study trained on and each preset's points."""

    presets: dict[str, PresetScale] = field(default_factory=dict)
    store: str = ""

    def with_preset(self, preset: str, params: int) -> ScaleResults:
        """The results with `preset` present and its parameter count set."""
        entry = replace(self.presets.get(preset, PresetScale()), params=params)
        return replace(self, presets={**self.presets, preset: entry})

    def with_point(self, preset: str, point: ScalePoint) -> ScaleResults:
        """The results with `point` added to `preset`'s, kept in step order."""
        entry = self.presets[preset]
        points = tuple(sorted((*entry.points, point), key=lambda p: p.step))
        return replace(self, presets={**self.presets, preset: replace(entry, points=points)})

    def to_dict(self) -> dict[str, Any]:
        return {"presets": {k: v.to_dict() for k, v in self.presets.items()}, "store": self.store}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScaleResults:
        known_keys(cls, d, "scale.json", TrainError)
        presets = {k: PresetScale.from_dict(v) for k, v in d.get("presets", {}).items()}
        return cls(presets, d.get("store", ""))

    def write(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ScaleResults:
        """The file at `path`, or empty results when there is none yet."""
        path = Path(path)
        return cls.from_dict(json.loads(path.read_text())) if path.exists() else cls()
