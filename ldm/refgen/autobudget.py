"""Budgets by rule (AutoRL): a run decides when it has learned, instead of a hand-set budget.

`AutoBudget` (the `[refgen.auto_budget]` table) holds the rule's few numbers, the same for every
env. `decide` reads a run's episode returns so far and says whether it stops:

- **learned**: it has `min_episodes` episodes (curation's t-test needs >= 3 in each tenth),
  its last tenth of episodes beats its first (curation's own Welch test, so curation will
  pass it) and its learning curve has flattened: the episodes that ended in the last fifth
  of its transitions no longer beat those of the fifth before (a curve over transitions, as
  RL plots it: CartPole's first tenths of episodes are many short ones), at `patience`
  looks in a row;
- **cap: transitions** / **cap: seconds**: the caps, whichever comes first.

The run's first `check_every` transitions are its probe: from then on its measured
transitions/s and mean episode length are kept with the decision (`StopRecord`), so a run
that stops at a cap says how far it could have got. Runs with a fixed budget get a
`StopRecord` too (`budget`, or `budget: episodes` / `budget: limit` where `min_episodes`
kept them going): every run says why it stopped.

Owns: `AutoBudget`, `StopRecord`, `StopReason` and `decide`. Imports numpy, ldm.data.store's
`tenth` rule and curation's Welch test lazily (scipy); must not import SB3, torch, ldm.envs or
later parts (the config and the dry run read it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ldm.errors import RefGenError, known_keys

StopReason = Literal[
    "learned",
    "cap: transitions",
    "cap: seconds",
    "budget",
    "budget: episodes",
    "budget: limit",
]


@dataclass(frozen=True)
class AutoBudget:
    """The rule that ends every run (no per-env budgets)."""

    max_transitions: int = 1_000_000
    """Cap in transitions (all streams together)."""
    max_seconds: float = 900.0
    """Cap in seconds of training (env start-up excluded)."""
    min_transitions: int = 10_000
    """No run stops as learned before this many transitions."""
    min_episodes: int = 30
    """...nor before this many finished episodes (3 in each tenth for curation's t-test)."""
    check_every: int = 2_000
    """Transitions between two looks at the curve (the first look is the probe)."""
    alpha: float = 0.05
    """Significance of both Welch tests (curation's improvement, the curve's flattening)."""
    patience: int = 2
    """Looks in a row at which the curve must be flat before the run stops."""

    def __post_init__(self) -> None:
        for name in ("max_transitions", "min_transitions", "min_episodes", "check_every"):
            if getattr(self, name) < 1:
                raise RefGenError(
                    f"[refgen.auto_budget] {name} must be >= 1, got {getattr(self, name)}"
                )
        if self.min_transitions > self.max_transitions:
            raise RefGenError(
                f"[refgen.auto_budget] min_transitions {self.min_transitions} is above "
                f"max_transitions {self.max_transitions}; lower the first or raise the second"
            )
        if self.max_seconds <= 0 or not 0 < self.alpha < 1 or self.patience < 1:
            raise RefGenError(
                "[refgen.auto_budget] needs max_seconds > 0, alpha in (0, 1) and patience >= 1 "
                f"(got {self.max_seconds}, {self.alpha}, {self.patience})"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoBudget:
        return cls(**known_keys(cls, d, "[refgen.auto_budget]", RefGenError))

    @property
    def tag(self) -> str:
        """A short stable id of the rule's numbers (in job keys: another rule, other runs)."""
        import hashlib
        import json

        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class StopRecord:
    """Why a run stopped, with what it had measured (in its meta and its JobResult)."""

    reason: StopReason
    transitions: int
    seconds: float
    episodes: int
    steps_per_second: float | None = None
    """Transitions per second of training, measured since the probe."""
    mean_episode_length: float | None = None
    """Transitions per finished episode (one stream's)."""
    p_improved: float | None = None
    """Welch p of last tenth > first tenth at the last look (auto budgets)."""
    p_flat: float | None = None
    """Welch p of the last fifth's episodes > the fifth's before, by transitions, at the last
    look (auto budgets)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StopRecord:
        return cls(**known_keys(cls, d, "stop record", RefGenError))


@dataclass(frozen=True)
class Look:
    """One look at the curve: whether it improved and whether it is flat, with the p-values."""

    improved: bool
    flat: bool
    p_improved: float | None
    p_flat: float | None


def look(returns: Any, ends: Any, transitions: int, alpha: float) -> Look:
    """Curation's improvement test (last tenth of episodes > first tenth) and the flattening
    test (the episodes that ended in the last fifth of the run's `transitions` are not better
    than those of the fifth before; `ends`: the transitions at which each episode ended) on
    the returns so far. Too few episodes in either fifth for a t-test: not flat."""
    from ldm.data.store import tenth
    from ldm.refgen.curate import welch_greater

    r, at = np.asarray(returns, dtype=np.float64), np.asarray(ends)
    k = tenth(r.size)
    improved = welch_greater(r[-k:], r[:k], alpha)
    last = r[at > 0.8 * transitions]
    before = r[(at > 0.6 * transitions) & (at <= 0.8 * transitions)]
    later = welch_greater(last, before, alpha)
    flat = later.p is not None and not later.greater
    return Look(improved.greater, flat, improved.p, later.p)


def decide(rule: AutoBudget, returns: Any, ends: Any, transitions: int, seconds: float,
           flat_looks: int) -> tuple[StopReason | None, Look | None]:  # fmt: skip
    """The reason to stop now (None: go on) and the look it took (None before the run may
    stop as learned). `ends`: the transitions at which each episode of `returns` ended;
    `flat_looks`: looks in a row, this one excluded, at which the curve was flat."""
    if transitions >= rule.max_transitions:
        return "cap: transitions", None
    if seconds >= rule.max_seconds:
        return "cap: seconds", None
    if transitions < rule.min_transitions or len(returns) < rule.min_episodes:
        return None, None
    seen = look(returns, ends, transitions, rule.alpha)
    if seen.improved and seen.flat and flat_looks + 1 >= rule.patience:
        return "learned", seen
    return None, seen
