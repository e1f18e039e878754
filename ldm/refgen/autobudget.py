"""Budgets by rule (AutoRL): a run decides when it has learned, instead of a hand-set budget.

`AutoBudget` (the `[refgen.auto_budget]` table) holds the rule's few numbers, the same for every
env. `decide` reads a run's episode returns so far and says whether it stops:

- **learned**: it has `min_episodes` episodes (curation's t-test needs >= 3 in each tenth),
  its last tenth of episodes beats its first (curation's own Welch test, so curation will
  pass it), and its learning curve is flat and has stayed flat while the run grew by
  `patience` (a share of the transitions it had at the first flat look of the streak).
  Flat is measured, not merely "no significant rise": the curve is over transitions, as RL
  plots it, and the gain from the middle third of the run's transitions to the last third
  lies, at both ends of its (1 - alpha) Welch confidence interval, within
  +-`flat_tolerance` of the run's improvement (last tenth - first tenth). A noisy curve is
  never called flat on too little evidence, nor a falling one: it runs on to a cap.
  Why each part: CartPole's ppo-8env (seed 0) rises to 210 at 12k transitions, falls to 91
  at 18k and reaches 500 at 26k; "the last tenths of episodes no longer beat the ones
  before at p < alpha" stopped it at 16k-20k with a last tenth of 115-144 (its first
  tenths of episodes are many short ones), and a one-sided bound on the gain called the
  fall flat;
- **cap: transitions** / **cap: seconds**: the caps, whichever comes first.

The run's first `check_every` transitions are its probe: from then on its measured
transitions/s and mean episode length are kept with the decision (`StopRecord`), so a run
that stops at a cap says how far it could have got. Runs with a fixed budget get a
`StopRecord` too (`budget`, or `budget: episodes` / `budget: limit` where `min_episodes`
kept them going): every run says why it stopped.

Owns: `AutoBudget`, `StopRecord`, `StopReason` and `decide`. Imports numpy, ldm.data.anchors'
`tenth` rule and curation's Welch test lazily (scipy); must not import SB3, torch, ldm.envs or
later parts (the config and the dry run read it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
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
    patience: float = 0.25
    """The curve must stay flat at every look while the run grows by this share of the
    transitions it had when it first looked flat."""
    flat_tolerance: float = 0.1
    """Flat: the last third's gain over the middle third is surely (1 - alpha) within +- this
    share of the run's improvement."""
    stage_hours: float | None = None
    """The reference stage's wall time, shared by its runs (ldm/refgen/stage_budget.py): each
    run's seconds cap is its share of what is left when it starts, between `min_seconds` and
    `max_seconds`. None: every run has the `max_seconds` cap."""
    min_seconds: float = 10.0
    """The smallest share a run gets where the stage's hours run short (with `stage_hours`)."""
    default_step_limit: int | None = None
    """Steps after which an episode of an env with no time limit of its own is cut (the
    hub's `ldm_default_step_limit`: envs with a registered or declared limit keep theirs).
    A run whose episodes were cut records the limit (`step_limit` in its meta): its
    deterministic check and the evaluation play under it too. None: no default limit, an
    env whose episodes never end fails its jobs ("no episode finished")."""

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
        if self.stage_hours is not None and (
            self.stage_hours <= 0 or not 0 < self.min_seconds <= self.max_seconds
        ):
            raise RefGenError(
                f"[refgen.auto_budget] stage_hours must be > 0 and min_seconds in (0, max_seconds "
                f"{self.max_seconds}] (got {self.stage_hours}, {self.min_seconds})"
            )
        if self.default_step_limit is not None and self.default_step_limit < 1:
            raise RefGenError(
                f"[refgen.auto_budget] default_step_limit must be >= 1 (or left out: no default "
                f"limit), got {self.default_step_limit}"
            )
        if (
            self.max_seconds <= 0
            or not 0 < self.alpha < 1
            or self.patience < 0
            or not 0 < self.flat_tolerance < 1
        ):
            raise RefGenError(
                "[refgen.auto_budget] needs max_seconds > 0, alpha and flat_tolerance in (0, 1) "
                f"and patience >= 0 (got {self.max_seconds}, {self.alpha}, "
                f"{self.flat_tolerance}, {self.patience})"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoBudget:
        return cls(**known_keys(cls, d, "[refgen.auto_budget]", RefGenError))

    @property
    def tag(self) -> str:
        """A short stable id of the rule's numbers (in job keys: another rule, other runs).
        The stage's hours are not in it: they set each run's cap when it starts (its
        `seconds_cap`), and a resumed stage keeps the runs it finished. Nor is an unset
        `default_step_limit` (the tags of rules from before it stay what they were)."""
        import hashlib
        import json

        rule = {k: v for k, v in asdict(self).items() if k not in ("stage_hours", "min_seconds")}
        if rule["default_step_limit"] is None:
            del rule["default_step_limit"]
        return hashlib.sha256(json.dumps(rule, sort_keys=True).encode()).hexdigest()[:8]

    def capped(self, seconds: float | None) -> AutoBudget:
        """The rule with its seconds cap lowered to `seconds` (a stage's share; None: as is)."""
        if seconds is None or seconds >= self.max_seconds:
            return self
        return replace(self, max_seconds=seconds, min_seconds=min(self.min_seconds, seconds))


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
    gain_bound: float | None = None
    """At the last look (auto budgets): the farther end from 0 of the confidence interval of
    the last third's gain over the middle third, as a share of the run's improvement (flat
    below `flat_tolerance`)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StopRecord:
        return cls(**known_keys(cls, d, "stop record", RefGenError))


@dataclass(frozen=True)
class Look:
    """One look at the curve: whether it improved and whether it is flat, with the figures."""

    improved: bool
    flat: bool
    p_improved: float | None
    gain_bound: float | None
    """The last third's gain over the middle third at the farther end of its confidence
    interval from 0, as a share of the improvement (None: too few episodes, or no
    improvement)."""


def gain_interval(last: np.ndarray, before: np.ndarray, alpha: float) -> tuple[float, float] | None:
    """The (1 - alpha) Welch confidence interval, each end one-sided, of mean(last) -
    mean(before); None with fewer than 2 episodes on a side."""
    from scipy.stats import t

    if last.size < 2 or before.size < 2:
        return None
    vl, vb = last.var(ddof=1) / last.size, before.var(ddof=1) / before.size
    gain = float(last.mean() - before.mean())
    if vl + vb == 0:
        return gain, gain
    df = (vl + vb) ** 2 / (vl**2 / (last.size - 1) + vb**2 / (before.size - 1))
    half = float(t.ppf(1 - alpha, df)) * float(np.sqrt(vl + vb))
    return gain - half, gain + half


def look(returns: Any, ends: Any, transitions: int, rule: AutoBudget) -> Look:
    """Curation's improvement test (last tenth of episodes > first tenth) and the flatness
    test (the gain from the episodes that ended in the middle third of the run's
    `transitions` to those of the last third is surely within +-`flat_tolerance` of the
    improvement; `ends`: the transitions at which each episode ended) on the returns so far."""
    from ldm.data.anchors import tenth
    from ldm.refgen.curate import welch_greater

    r, at = np.asarray(returns, dtype=np.float64), np.asarray(ends)
    k = tenth(r.size)
    improved = welch_greater(r[-k:], r[:k], rule.alpha)
    gain = gain_interval(
        r[at > 2 * transitions / 3],
        r[(at > transitions / 3) & (at <= 2 * transitions / 3)],
        rule.alpha,
    )
    rise = float(r[-k:].mean() - r[:k].mean())
    # neither rising nor falling: a curve that fell from a peak is unstable, not done
    bound = (
        max(abs(gain[0]), abs(gain[1])) / rise if gain and improved.greater and rise > 0 else None
    )
    flat = bound is not None and bound < rule.flat_tolerance
    return Look(improved.greater, flat, improved.p, bound)


def decide(rule: AutoBudget, returns: Any, ends: Any, transitions: int, seconds: float,
           flat_since: int | None) -> tuple[StopReason | None, Look | None]:  # fmt: skip
    """The reason to stop now (None: go on) and the look it took (None before the run may
    stop as learned). `ends`: the transitions at which each episode of `returns` ended;
    `flat_since`: the transitions at the first look of the current flat streak (None: the
    last look was not flat)."""
    if transitions >= rule.max_transitions:
        return "cap: transitions", None
    if seconds >= rule.max_seconds:
        return "cap: seconds", None
    if transitions < rule.min_transitions or len(returns) < rule.min_episodes:
        return None, None
    seen = look(returns, ends, transitions, rule)
    since = transitions if flat_since is None else flat_since
    if seen.improved and seen.flat and transitions >= since * (1 + rule.patience):
        return "learned", seen
    return None, seen
