"""The one refgen job planner: which jobs a config means, for the stage, the CLI and the dry run.

`plan_library` / `plan_jobs` are pure: they read the config, the candidate pool and the
envs' spaces (through the `spaces` function passed in, by default the catalog's recorded
spaces) and return `Job` records; they run nothing and write nothing. The stage runs the
ranking jobs, turns their results into a ranking, and plans the library again with that
ranking to get its reference jobs; the dry run plans without a ranking (the pool's order):
which candidates win changes the jobs' names, never their number or budgets.

Must not import: the runner, SB3, torch (the dry run and `import ldm.refgen.plan` stay light).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from ldm.errors import RefGenError
from ldm.refgen.candidates import Candidate, load_pool
from ldm.refgen.jobs import Job
from ldm.refgen.selection import Selection, SelectionRule, select_envs

if TYPE_CHECKING:
    from ldm.refgen.config import RefGenConfig
    from ldm.spaces import SpaceSpec

SpacesFn = Callable[[str], "tuple[SpaceSpec, SpaceSpec]"]
#: a ranking: candidate names in order, per action kind, with "*" the library-wide order
#: (and per ranking env id where an env ranked on takes its own order: rank_env_order = "env")
Ranking = dict[str, list[str]]


def _catalog_spaces(env_id: str) -> tuple[SpaceSpec, SpaceSpec]:
    from ldm.envs import env_spaces

    return env_spaces(env_id)


@dataclass(frozen=True)
class LibraryPlan:
    """The jobs of one library: ranking runs on K envs, then top-N x seeds runs per env."""

    library: str
    envs: tuple[str, ...]
    rank_envs: tuple[str, ...]
    """The K envs candidates are ranked on; empty when ranking is skipped."""
    rank_jobs: tuple[Job, ...]
    train_jobs: tuple[Job, ...]
    """Reference runs; a seed-0 run that a ranking run already is appears with phase "rank"
    and the ranking job's key (it is not run twice)."""
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    """env -> candidate -> why it cannot run there."""
    ranking_note: str | None = None
    """Why ranking is skipped (too few compatible candidates), if it is."""

    def weights(self, refine: float) -> dict[str, float]:
        """Each distinct job's weight in the stage's shared hours: `refine` for a reference
        run on an env candidates were ranked on that is not its ranking run (refine > 0),
        else 1."""
        return {
            j.key: refine if refine and j.phase == "train" and j.env_id in self.rank_envs else 1.0
            for j in self.jobs
        }

    @property
    def jobs(self) -> list[Job]:
        """Every distinct job of the library, ranking first."""
        seen: dict[str, Job] = {}
        for j in (*self.rank_jobs, *self.train_jobs):
            seen.setdefault(j.key, j)
        return list(seen.values())


def envs_by_library(cfg: RefGenConfig) -> dict[str, list[str]]:
    """Qualified env ids grouped by library (sorted, capped by max_envs_per_library); with a
    selection rule, the rule's pick beside the listed ones."""
    from ldm.envs import list_envs, resolve_env_id

    out: dict[str, list[str]] = {}
    if cfg.select is not None:
        for lib, ids in selection(cfg).picked.items():
            out.setdefault(lib, []).extend(ids)
    for env_id in cfg.envs:
        spec, rid = resolve_env_id(env_id)
        out.setdefault(spec.name, []).append(f"{spec.name}/{rid}")
    for lib in cfg.libraries:
        out.setdefault(lib, []).extend(e.id for e in list_envs(lib))
    grouped = {lib: sorted(set(ids))[: cfg.max_envs_per_library] for lib, ids in out.items()}
    planned = {e for ids in grouped.values() for e in ids}
    for name in ("budgets", "rank_budgets"):
        stray = sorted(set(getattr(cfg, name)) - planned)
        if stray:
            raise RefGenError(
                f"refgen.{name} names envs the stage does not run: {stray}; write them as "
                f"`library/env-id`, exactly as in refgen.envs (or remove them)"
            )
    return grouped


def selection(cfg: RefGenConfig) -> Selection:
    """The envs `cfg.select` picks from the catalog (the same pick every call)."""
    if cfg.select is None:
        raise RefGenError("refgen config has no [refgen.select] rule")
    return _selection(cfg.select, cfg.pool, tuple(cfg.candidates or ()) or None)


@cache
def _selection(rule: SelectionRule, pool: str | None, names: tuple[str, ...] | None) -> Selection:
    return select_envs(rule, load_pool(pool, list(names) if names else None))


def compatible(
    pool: list[Candidate], env_id: str, spaces: SpacesFn = _catalog_spaces
) -> tuple[list[Candidate], dict[str, str]]:
    """The candidates that can run on an env, and why each other one cannot."""
    obs, act = spaces(env_id)
    ok, skipped = [], {}
    for c in pool:
        good, why = c.compatible(obs, act)
        if good:
            ok.append(c)
        else:
            skipped[c.name] = why
    return ok, skipped


def rank_subset(envs: list[str], k: int, spaces: SpacesFn = _catalog_spaces) -> list[str]:
    """K envs taken round-robin over action kinds (in sorted order within each kind)."""
    groups: dict[str, list[str]] = {}
    for e in envs:
        groups.setdefault(spaces(e)[1].kind, []).append(e)
    out: list[str] = []
    while len(out) < min(k, len(envs)):
        for g in groups.values():
            if g and len(out) < k:
                out.append(g.pop(0))
    return out


def _job(cfg: RefGenConfig, phase: str, env_id: str, library: str, c: Candidate, budget: int,
         seed: int, store: str) -> Job:  # fmt: skip
    if cfg.auto_budget is not None:  # the rule ends the run; its cap is the budget
        auto = cfg.auto_budget
        return Job(phase, env_id, library, c, auto.max_transitions, seed, store, cfg.backend,
                   check_episodes=cfg.check_episodes, auto=auto)  # fmt: skip
    return Job(
        phase,
        env_id,
        library,
        c,
        budget,
        seed,
        store,
        cfg.backend,
        min_episodes=cfg.min_episodes,
        max_budget=int(budget * cfg.max_budget_factor) if cfg.min_episodes else 0,
        check_episodes=cfg.check_episodes,
    )


def rank_budget(cfg: RefGenConfig, env_id: str) -> int:
    """The transitions of `env_id`'s ranking runs: rank_budgets, else budgets, else
    rank_budget (an auto budget's cap where the rule decides)."""
    if cfg.auto_budget is not None:
        return cfg.auto_budget.max_transitions
    return cfg.rank_budgets.get(env_id, cfg.budgets.get(env_id, cfg.rank_budget))


def train_budget(cfg: RefGenConfig, env_id: str) -> int:
    """The transitions of `env_id`'s reference runs: budgets, else train_budget (an auto
    budget's cap where the rule decides)."""
    if cfg.auto_budget is not None:
        return cfg.auto_budget.max_transitions
    return cfg.budgets.get(env_id, cfg.train_budget)


def plan_library(
    library: str,
    envs: list[str],
    pool: list[Candidate],
    cfg: RefGenConfig,
    store: str,
    ranking: Ranking | None = None,
    spaces: SpacesFn = _catalog_spaces,
) -> LibraryPlan:
    """The jobs of one library. Without `ranking` the reference jobs take candidates in the
    pool's order (what the dry run counts); the stage passes the ranking it measured."""
    compat = {e: compatible(pool, e, spaces) for e in envs}
    names = {c.name for ok, _ in compat.values() for c in ok}
    ranked = len(names) > cfg.top_n
    subset = rank_subset(envs, cfg.rank_envs, spaces) if ranked else []
    rank_jobs = [
        _job(cfg, "rank", e, library, c, rank_budget(cfg, e), 0, store)
        for e in subset
        for c in compat[e][0]
    ]
    by_name = {c.name: c for c in pool}
    train_jobs = []
    for env_id in envs:
        ok = compat[env_id][0]
        chosen = [n for n in _order(ranking, env_id, spaces, pool) if by_name[n] in ok]
        chosen = chosen[: cfg.top_n]
        budget = train_budget(cfg, env_id)
        reusable = env_id in subset and rank_budget(cfg, env_id) == budget and not cfg.refine
        for n in chosen:
            for seed in range(cfg.seeds):
                phase = "rank" if seed == 0 and reusable else "train"
                train_jobs.append(
                    _job(cfg, phase, env_id, library, by_name[n], budget, seed, store)
                )
    note = (
        None
        if ranked
        else f"only {len(names)} compatible candidates <= N={cfg.top_n}: ranking skipped"
    )
    return LibraryPlan(
        library,
        tuple(envs),
        tuple(subset),
        tuple(rank_jobs),
        tuple(train_jobs),
        {e: why for e, (_, why) in compat.items() if why},
        note,
    )


def _order(
    ranking: Ranking | None, env_id: str, spaces: SpacesFn, pool: list[Candidate]
) -> list[str]:
    """Candidate names best first: the env's own ranking where it has one, else the ranking
    for its action kind, else the library-wide order; then the rest of the pool in its order."""
    r = ranking or {}
    order = list(r.get(env_id) or r.get(spaces(env_id)[1].kind, r.get("*", [])))
    return order + [c.name for c in pool if c.name not in order]


def plan_fallbacks(
    plan: LibraryPlan,
    env_id: str,
    pool: list[Candidate],
    cfg: RefGenConfig,
    store: str,
    ranking: Ranking | None = None,
    spaces: SpacesFn = _catalog_spaces,
) -> list[Job]:
    """The reference jobs that stand in for an env of `plan` whose references all failed
    curation and none of whose ranking runs passed: the next `cfg.fallback_candidates`
    compatible candidates, in the ranking's order for the env's action kind, that the plan
    has not run on it (one seed each; none where every compatible candidate already ran
    there, as on an env candidates were ranked on), then the first `cfg.fallback_seeds`
    compatible candidates in that order again with seed `cfg.seeds` (one the plan does not
    use); all at the env's reference budget."""
    tried = {j.candidate.name for j in plan.jobs if j.env_id == env_id}
    ok = {c.name for c in compatible(pool, env_id, spaces)[0]}
    order = [n for n in _order(ranking, env_id, spaces, pool) if n in ok]
    untried = [n for n in order if n not in tried][: cfg.fallback_candidates]
    reseeded = order[: cfg.fallback_seeds]
    by_name = {c.name: c for c in pool}
    budget = train_budget(cfg, env_id)
    return [
        _job(cfg, "train", env_id, plan.library, by_name[n], budget, seed, store)
        for names, seed in ((untried, 0), (reseeded, cfg.seeds))
        for n in names
    ]


def fallback_jobs_max(cfg: RefGenConfig, store: str, spaces: SpacesFn = _catalog_spaces) -> int:
    """The most fallback jobs the config can add (every env's references failing curation):
    how many candidates `plan_fallbacks` names per env does not depend on the ranking."""
    if not cfg.falls_back:
        return 0
    pool = load_pool(cfg.pool, cfg.candidates)
    count = 0
    for library, envs in envs_by_library(cfg).items():
        lp = plan_library(library, envs, pool, cfg, store, None, spaces)
        count += sum(len(plan_fallbacks(lp, e, pool, cfg, store, None, spaces)) for e in envs)
    return count


def plan_jobs(
    cfg: RefGenConfig,
    store: str,
    rankings: dict[str, Ranking] | None = None,
    spaces: SpacesFn = _catalog_spaces,
) -> list[Job]:
    """Every distinct job the config means (per library: ranking jobs, then reference jobs)."""
    pool = load_pool(cfg.pool, cfg.candidates)
    out: list[Job] = []
    for library, envs in envs_by_library(cfg).items():
        lp = plan_library(library, envs, pool, cfg, store, (rankings or {}).get(library), spaces)
        out += lp.jobs
    return out


@dataclass(frozen=True)
class EnvJobs:
    """The dry run's figures of one env."""

    jobs: int
    transitions: int
    """The planned minimum: the sum of its jobs' budgets."""
    budgets: tuple[int, ...]
    """The distinct budgets of its jobs, in plan order."""

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "transitions": self.transitions, "budgets": list(self.budgets)}


@dataclass(frozen=True)
class LibraryJobs:
    """The dry run's figures of one library."""

    rank_jobs: int
    train_jobs: int
    transitions: int
    """The planned minimum (every run's budget)."""
    transitions_max: int
    """With episode budgets a run may go on up to its hard limit; their sum."""
    envs: dict[str, EnvJobs]

    @classmethod
    def of(cls, jobs: list[Job]) -> LibraryJobs:
        by_env: dict[str, list[Job]] = {}
        for j in jobs:
            by_env.setdefault(j.env_id, []).append(j)
        return cls(
            rank_jobs=sum(j.phase == "rank" for j in jobs),
            train_jobs=sum(j.phase != "rank" for j in jobs),
            transitions=sum(j.budget for j in jobs),
            transitions_max=sum(max(j.budget, j.max_budget) for j in jobs),
            envs={
                env_id: EnvJobs(
                    len(js), sum(j.budget for j in js), tuple(dict.fromkeys(j.budget for j in js))
                )
                for env_id, js in by_env.items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank_jobs": self.rank_jobs,
            "train_jobs": self.train_jobs,
            "transitions": self.transitions,
            "transitions_max": self.transitions_max,
            "envs": {e: v.to_dict() for e, v in self.envs.items()},
        }


def summarise_jobs(jobs: list[Job]) -> dict[str, LibraryJobs]:
    """The dry run's numbers: jobs and transitions per library and per env (a tested contract)."""
    by_library: dict[str, list[Job]] = {}
    for j in jobs:
        by_library.setdefault(j.library, []).append(j)
    return {library: LibraryJobs.of(js) for library, js in by_library.items()}
