"""RefGenConfig: every knob of the reference-policy stage, documented and validated.

Every check that needs only the settings (ranges, the runner and backend choices) runs in
`__post_init__`, so `ldm run --dry-run` rejects what the stage would. Imports the hub's
backend names, refgen's runner names and its selection and auto-budget rules; must not import the runner's machinery, SB3,
torch, ldm.model or later parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ldm.envs import BACKEND_NAMES, Backend
from ldm.errors import RefGenError
from ldm.refgen.autobudget import AutoBudget
from ldm.refgen.runner import RUNNERS, Runner
from ldm.refgen.selection import SelectionRule

RankEnvOrder = Literal["library", "env"]
RANK_ENV_ORDERS: tuple[RankEnvOrder, ...] = ("library", "env")


@dataclass
class RefGenConfig:
    """Settings of the reference-policy stage (paper defaults; presets shrink the budgets)."""

    envs: list[str] = field(default_factory=list)
    """Qualified env ids to generate references for (grouped by library)."""
    libraries: list[str] = field(default_factory=list)
    """Whole libraries: every catalogued env of each (capped by max_envs_per_library)."""
    select: SelectionRule | None = None
    """Envs by rule instead of a list (`[refgen.select]`, ldm/refgen/selection.py): per
    library up to K envs that pass their checks, spread over families, drawn with a seed."""
    auto_budget: AutoBudget | None = None
    """Budgets by rule instead of tables (`[refgen.auto_budget]`, ldm/refgen/autobudget.py):
    every run stops when it has learned or at a cap; rank_budget, train_budget, budgets,
    rank_budgets, min_episodes and max_budget_factor are then not read."""
    candidates: list[str] | None = None
    """Names of pool candidates to consider; None = the whole pool."""
    pool: str | None = None
    """Candidate pool file; None = ldm/refgen/candidates.toml."""
    rank_envs: int = 5
    """K: envs per library on which candidates are ranked."""
    rank_budget: int = 3_000_000
    """Transitions per ranking run."""
    top_n: int = 3
    """N: candidates trained as references on every env of the library."""
    rank_env_order: RankEnvOrder = "library"
    """Which top-N an env candidates were ranked on takes: "library" (the paper: the
    library's ranking, as on its other envs) or "env" (its own: every compatible candidate
    has already run there, so the Welch points of its own ranking runs decide, ties in the
    library's order; nothing more is trained). With top_n = 1 "library" gives a library
    whose envs differ one candidate for all (MuJoCo: the winner on HalfCheetah, not the one
    that learned InvertedDoublePendulum)."""
    train_budget: int = 3_000_000
    """Transitions per reference run."""
    seeds: int = 1
    """Seeds per (candidate, env) reference run."""
    max_envs_per_library: int = 250
    """Cap of envs per library."""
    alpha: float = 0.05
    """Significance level of the Welch t-tests (ranking and curation)."""
    best_fraction: float = 0.95
    """Curation: runs whose final return is below this fraction of the best run on the env fail."""
    backend: Backend = "process"
    """Env backend for training (process, inprocess, ray, docker)."""
    runner: Runner = "local"
    """Job runner: local (process pool) or ray."""
    workers: int | None = None
    """Parallel jobs; None = the number of CPUs."""
    retries: int = 1
    """Retries of a failing job before it is recorded as failed."""
    budgets: dict[str, int] = field(default_factory=dict)
    """Per-env transition budgets overriding rank_budget and train_budget (for small CPU
    presets, where simulation speed differs by orders of magnitude between envs)."""
    rank_budgets: dict[str, int] = field(default_factory=dict)
    """Per-env ranking budgets overriding `budgets` (and rank_budget) for the ranking runs
    only: an env that needs a long reference run need not rank every candidate that long
    (the slow off-policy ones above all). Its ranking run is then not its reference."""
    refine: float = 0.0
    """Successive halving in two rungs (with `[refgen.auto_budget]`): > 0, an env candidates
    were ranked on does not take its ranking run as its reference; its top-N train again
    (seed 0 too, phase "train") and, where the stage has hours (`stage_hours`), each such
    run's share of the stage's time is `refine` times a ranking run's. The ranking then
    runs every candidate briefly and the winner long (on 2026-12-07 the suite's ranking runs
    got ~105 s each and BipedalWalker's winner flipped between draws that played -43 and
    243). The ranking runs stay in the store as fallbacks where the refined run fails
    curation. 0 = off: the ranking run is the reference (the paper's order)."""
    fallback_candidates: int = 0
    """Where every reference run of an env fails curation and none of its ranking runs passes,
    train up to this many more candidates on it (the next ones in its library's ranking for
    its action kind that have not run there), relabel and curate them among themselves, and
    take those that pass. It costs only on envs whose references failed (a library ranked on
    other envs can pick a candidate that does not learn this one). 0 = off."""
    fallback_seeds: int = 0
    """With those fallbacks, also train the first this-many compatible candidates of the
    env's ranking order again with a seed the config does not use (`seeds`), at the env's
    reference budget: an env the library was ranked on has no untried candidate, and a run
    whose curation t-test missed by a little (p = 0.05-0.07) often passes with another seed.
    Same rule for every env; it costs only where an env has no passing run. 0 = off."""
    min_episodes: int = 0
    """Episodes every run must finish (its streams together) before it stops: a run takes
    max(budget, the transitions of its first `min_episodes` episodes), so long-horizon envs
    give curation's t-test enough episodes (>= 20 gives >= 2 in the first 10%). 0 = off."""
    max_budget_factor: float = 4.0
    """Hard limit of a run with `min_episodes`, as a multiple of its transition budget."""
    check_episodes: int = 0
    """Episodes every run's final policy plays with its deterministic actions (the ones
    relabelled into the store) after training, on seeds training did not use
    (ldm/refgen/check.py). 0 = no check."""
    check_floor: float = 0.0
    """Curation fails a run whose check scores below this percentage of its own training
    improvement, 100 x (check - first 10%) / (last 10% - first 10%): a reference whose
    deterministic policy does not play what its training returns promise (the fallbacks then
    replace it). Read only where runs were checked (`check_episodes` > 0)."""

    @property
    def falls_back(self) -> bool:
        """Whether envs without a passing run get fallback jobs (candidates or seeds)."""
        return bool(self.fallback_candidates or self.fallback_seeds)

    @property
    def ranks_per_env(self) -> bool:
        """Whether an env candidates were ranked on takes its own order (rank_env_order)."""
        return self.rank_env_order == "env"

    def __post_init__(self) -> None:
        if not self.envs and not self.libraries and self.select is None:
            raise RefGenError("RefGenConfig needs `envs`, `libraries` or a `select` rule")
        if self.auto_budget is not None:
            hand = [n for n in ("budgets", "rank_budgets", "min_episodes") if getattr(self, n)]
            if hand:
                raise RefGenError(
                    f"refgen sets auto_budget and {hand}: an auto budget decides every run's "
                    "length (and has its own min_episodes); remove those keys or auto_budget"
                )
        if self.refine < 0 or (self.refine and self.auto_budget is None):
            raise RefGenError(
                f"refine must be >= 0 and needs [refgen.auto_budget] (got {self.refine}, "
                f"auto_budget {'set' if self.auto_budget else 'unset'}): with fixed budgets a "
                "ranking env's reference run would repeat its ranking run; remove refine or "
                "add [refgen.auto_budget]"
            )
        if self.rank_env_order not in RANK_ENV_ORDERS:
            raise RefGenError(
                f"rank_env_order {self.rank_env_order!r} is not one of {RANK_ENV_ORDERS}"
            )
        if self.runner not in RUNNERS:
            raise RefGenError(f"runner {self.runner!r} is not one of {RUNNERS}")
        if self.backend not in BACKEND_NAMES:
            raise RefGenError(f"backend {self.backend!r} is not one of {BACKEND_NAMES}")
        for name in (
            "rank_envs",
            "rank_budget",
            "top_n",
            "train_budget",
            "seeds",
            "max_envs_per_library",
        ):
            if getattr(self, name) < 1:
                raise RefGenError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("fallback_candidates", "fallback_seeds", "check_episodes"):
            if getattr(self, name) < 0:
                raise RefGenError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.min_episodes < 0 or self.max_budget_factor < 1:
            raise RefGenError(
                f"min_episodes must be >= 0 (got {self.min_episodes}) and max_budget_factor "
                f">= 1 (got {self.max_budget_factor})"
            )
        for name in ("budgets", "rank_budgets"):
            bad = {e: b for e, b in getattr(self, name).items() if b < 1}
            if bad:
                raise RefGenError(f"{name} must be >= 1 transitions, got {bad}")
        if not 0 < self.alpha < 1 or not 0 < self.best_fraction <= 1:
            raise RefGenError("alpha must be in (0, 1) and best_fraction in (0, 1]")
        if self.check_floor > 100:
            raise RefGenError(
                f"check_floor is a percentage of a run's own improvement, at most 100 (got "
                f"{self.check_floor}); set it to e.g. 0 (above its first 10%) or 50"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RefGenConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise RefGenError(f"refgen config has unknown keys {sorted(unknown)}")
        tables = {"select": SelectionRule, "auto_budget": AutoBudget}
        return cls(
            **{
                **d,
                **{
                    k: rec.from_dict(d[k])
                    for k, rec in tables.items()
                    if isinstance(d.get(k), dict)
                },
            }
        )
