"""Expert scores as data, and the expert-normalised score JAT reports: (R - random) / (expert -
random).

Owns: reading ldm/eval/experts.toml (one `ExpertScore` per env, its source named) and the
formula `expert_normalised_score`. The random scores are measured elsewhere
(ldm/eval/random_scores.py). Imports only the standard library and ldm.errors: any code (the
wide run's tables, a notebook) may call it; must not import numpy, torch, the hub or the rest of
ldm.eval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import tomllib

from ldm.errors import EvalError, known_keys

EXPERTS_FILE = Path(__file__).with_name("experts.toml")

Source = Literal["optimum", "zoo", "jat", "threshold"]
"""Where an expert score comes from, in the order the rule takes them (experts.toml's header):
the env's known optimum, the RL Baselines3 Zoo benchmark's best algorithm, JAT's expert,
Gymnasium's reward threshold."""
SOURCES: tuple[str, ...] = get_args(Source)


@dataclass(frozen=True)
class ExpertScore:
    """One env's expert return and where it was published."""

    env_id: str
    expert: float
    source: Source
    ref: str
    """The table, the row and the run the number comes from (or how the optimum follows)."""
    note: str = ""
    """Where the source measured another version of the env, and other caveats."""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise EvalError(
                f"{self.env_id}: expert source {self.source!r} is not one of {SOURCES} "
                f"(fix its entry in {EXPERTS_FILE.name})"
            )
        if not math.isfinite(self.expert):
            raise EvalError(f"{self.env_id}: expert score {self.expert} is not a finite number")
        if not self.ref:
            raise EvalError(f"{self.env_id}: expert score {self.expert} has no `ref` (its source)")


def load_experts(path: str | Path | None = None) -> dict[str, ExpertScore]:
    """Every env's expert score, by qualified env id (the built-in file, or `path`)."""
    return dict(_load(str(Path(path) if path is not None else EXPERTS_FILE)))


@cache
def _load(path: str) -> tuple[tuple[str, ExpertScore], ...]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EvalError(f"expert scores {path} cannot be read: {e}") from None
    out = []
    for env_id, entry in data.items():
        if not isinstance(entry, dict):
            raise EvalError(f'{path}: {env_id!r} must be a table ["{env_id}"] of expert fields')
        known_keys(ExpertScore, {"env_id": env_id, **entry}, f"{path} [{env_id!r}]", EvalError)
        out.append((env_id, ExpertScore(env_id=env_id, **entry)))
    return tuple(out)


def expert_score(env_id: str) -> ExpertScore | None:
    """The env's expert score from the built-in file; None where none is published."""
    return load_experts().get(env_id)


def expert_normalised_score(mean_return: float, random: float, expert: float) -> float | None:
    """(R - random) / (expert - random): 0 plays like uniform random actions, 1 like the
    expert. None where expert and random are equal (the env cannot tell them apart)."""
    if math.isclose(expert, random, rel_tol=1e-9, abs_tol=1e-12):
        return None
    return (mean_return - random) / (expert - random)
