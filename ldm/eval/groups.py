"""Envs played in groups, each finished group kept: an evaluation at breadth that fits in
memory and survives a kill.

Every env of an evaluation is a worker process (its library's interpreter and simulator),
and the protocol steps all of them together. At the wide run's 150 envs, with the references
playing beside the LDM, that is ~300 processes at once. `EvalConfig.envs_at_once` caps it:
the envs are played `envs_at_once` at a time, in the plan's order. With a `partial`
directory, each finished group's env results are written there atomically (one file per
group, named by the config, the group's envs and the caller's `key`, e.g. the checkpoint's
identity), and a rerun plays only the groups without a file: a kill loses at most the group
it was in. The caller removes the directory once its results.json is written.

Owns `Partial`, `groups` and `GroupResult`. Imports ldm.atomic and the results records; must
not import torch, ldm.model, ldm.train or ldm.pipeline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from ldm.atomic import write_json_atomic
from ldm.eval.results import EnvResult

T = TypeVar("T")


def groups(items: list[T], size: int) -> list[list[T]]:
    """`items` in consecutive groups of `size` (0: one group of all of them)."""
    if not items:
        return []
    size = size or len(items)
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class GroupResult:
    """One group's env results (clips attached) and what playing it cost."""

    envs: tuple[EnvResult, ...]
    model_calls: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "envs": [e.to_dict() for e in self.envs],
            "model_calls": self.model_calls,
            "steps": self.steps,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GroupResult:
        return cls(tuple(EnvResult.from_dict(e) for e in d["envs"]), d["model_calls"], d["steps"])


@dataclass(frozen=True)
class Partial:
    """Where an evaluation keeps its finished groups, and whose they are (`key`: what was
    evaluated, e.g. a checkpoint and its file's modification time)."""

    path: Path
    key: str

    def _file(self, config: Any, env_ids: list[str]) -> Path:
        ident = json.dumps([asdict(config), env_ids, self.key], sort_keys=True, default=str)
        return self.path / f"group-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"

    def load(self, config: Any, env_ids: list[str]) -> GroupResult | None:
        """The group's kept results (None: not played yet by this config, envs and key)."""
        f = self._file(config, env_ids)
        return GroupResult.from_dict(json.loads(f.read_text())) if f.exists() else None

    def save(self, config: Any, env_ids: list[str], result: GroupResult) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._file(config, env_ids), result.to_dict())
