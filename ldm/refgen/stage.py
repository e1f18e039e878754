"""The reference-policy stage: rank candidates per library, train references, relabel, curate.

Every step is resumable: jobs by the runner's manifest, relabelling by each run's
`relabelled` flag, curation by recomputing verdicts. Tables go to `<store>/refgen/`.

Owns `run_refgen` (the stage's order of work: rank and train, exclude, relabel, curate,
fall back on other ranking runs, then on fallback candidates trained for the envs still
without a reference) and its summary line printout; the settings are `RefGenConfig`
(ldm/refgen/config.py), ranking is ldm/refgen/ranking.py, and the tables and summary it
writes are the records of ldm/refgen/records.py. Imports ldm.data and refgen's planner,
runner, ranking, curation and records; must not import ldm.model, ldm.train, ldm.eval or
ldm.pipeline.
"""

from __future__ import annotations

from ldm.data import Curation, ManifestEntry, Store
from ldm.refgen.candidates import Candidate, load_pool
from ldm.refgen.config import RefGenConfig
from ldm.refgen.curate import curate_env, relabel_run
from ldm.refgen.jobs import JobResult
from ldm.refgen.plan import (
    LibraryPlan,
    Ranking,
    envs_by_library,
    plan_fallbacks,
    plan_library,
)
from ldm.refgen.ranking import ranking_table
from ldm.refgen.records import LibraryOutcome, RankingTable, RefGenSummary, RunOutcome
from ldm.refgen.runner import run_jobs
from ldm.refgen.stage_budget import StageBudget


def rank_and_train(
    libraries: dict[str, list[str]],
    pool: list[Candidate],
    cfg: RefGenConfig,
    store: str,
    progress: bool = True,
    budget: StageBudget | None = None,
) -> dict[str, tuple[RankingTable, dict[str, JobResult]]]:
    """Rank every library's candidates (where there are more than N), then train the top-N of
    each ranking on every env of its library, `seeds` seeds each. The ranking jobs of all
    libraries run as one batch, then all reference jobs (workers stay busy across libraries,
    and the progress bar's estimate covers the whole phase). The jobs are the planner's
    (ldm/refgen/plan.py), so the dry run counts what this runs.

    Returns library -> (ranking table, results of its reference jobs by key)."""
    plans = {lib: plan_library(lib, envs, pool, cfg, store) for lib, envs in libraries.items()}
    ranked = run_jobs(
        [j for lp in plans.values() for j in lp.rank_jobs],
        cfg.runner, cfg.workers, cfg.retries, progress, desc="rank candidates", budget=budget,
    )  # fmt: skip
    tables = {lib: ranking_table(lp, pool, cfg, store, ranked) for lib, lp in plans.items()}
    refs = {
        lib: plan_library(lib, envs, pool, cfg, store, tables[lib].order(cfg.ranks_per_env))
        for lib, envs in libraries.items()
    }
    if budget is not None:  # the winners' reference jobs, not the pool order's
        budget.replan({k: w for lp in refs.values() for k, w in lp.weights(cfg.refine).items()})
    results = run_jobs(
        [j for lp in refs.values() for j in lp.train_jobs],
        cfg.runner, cfg.workers, cfg.retries, progress, desc="train references", budget=budget,
    )  # fmt: skip
    return {
        lib: (tables[lib], {j.key: results[j.key] for j in lp.train_jobs})
        for lib, lp in refs.items()
    }


def run_refgen(cfg: RefGenConfig, store_path: str, progress: bool = True) -> RefGenSummary:
    """The whole stage; resumable. Returns its summary (also written to <store>/refgen/summary.json)."""
    store = Store(store_path)
    pool = load_pool(cfg.pool, cfg.candidates)
    libraries: dict[str, LibraryOutcome] = {}
    references: set[str] = set()
    rankings: dict[str, Ranking] = {}
    by_library = envs_by_library(cfg)  # the pick once (a selection reads the whole catalog)
    budget = stage_budget(cfg, pool, store_path, by_library)
    for library, (table, results) in rank_and_train(
        by_library, pool, cfg, store_path, progress, budget
    ).items():
        references |= {r.run_id for r in results.values() if r.status == "done" and r.run_id}
        rankings[library] = table.order(cfg.ranks_per_env)
        libraries[library] = LibraryOutcome(
            tuple(table.candidates),
            table.ranking_by_action_kind,
            references=sum(r.status == "done" for r in results.values()),
            failed=tuple(k for k, r in results.items() if r.status == "failed"),
        )
    runs = store.runs()
    for run_id in runs:  # ranking runs that are nobody's reference stay, but are not trained on
        if run_id not in references and _verdict(store, run_id) != "excluded":
            store.update_meta(
                run_id,
                {
                    "curation": {
                        "verdict": "excluded",
                        "reasons": [_unused_ranking_run(cfg)],
                    }
                },
            )
    relabel_runs(store, references, "relabel", progress)
    verdicts: dict[str, Curation] = {}
    for env_id in sorted({runs[r].env_id for r in references}):
        verdicts.update(curate_env_references(store, env_id, references, cfg))
    # each library planned once with the ranking it measured: its ranking runs and the
    # candidates already tried per env, for both fallbacks
    plans = {
        lib: plan_library(lib, envs, pool, cfg, store_path, rankings.get(lib))
        for lib, envs in by_library.items()
    }
    ranking_runs = {j.run_id for lp in plans.values() for j in lp.rank_jobs}
    fallbacks = fallback_references(
        store, runs, references, verdicts, cfg, ranking_runs, progress
    )  # fmt: skip
    fallbacks |= train_fallbacks(
        store, store_path, references, verdicts, cfg, pool, plans, rankings, progress, budget
    )
    runs = store.runs()  # with the fallback runs trained just now
    summary = RefGenSummary(
        libraries,
        {env_id: tuple(run_ids) for env_id, run_ids in fallbacks.items()},
        {
            rid: RunOutcome(
                runs[rid].env_id,
                verdicts[rid],
                store.open_run(rid, episodes=False).meta.extra.get("stop", {}).get("reason"),
            )
            for rid in sorted(verdicts)
        },
    )
    summary.write(store.path)
    return summary


def stage_budget(
    cfg: RefGenConfig, pool: list[Candidate], store: str, by_library: dict[str, list[str]]
) -> StageBudget | None:
    """The stage's shared hours (`[refgen.auto_budget] stage_hours`) over every ranking and
    reference job the planner plans (the dry run's count); None without stage_hours."""
    auto = cfg.auto_budget
    if auto is None or auto.stage_hours is None:
        return None
    import os

    weights = {
        k: w
        for lib, envs in by_library.items()
        for k, w in plan_library(lib, envs, pool, cfg, store).weights(cfg.refine).items()
    }
    workers = cfg.workers or max(1, os.cpu_count() or 1)
    return StageBudget(
        auto.stage_hours * 3600, workers, set(weights), auto.min_seconds, auto.max_seconds,
        weights=weights,
    )  # fmt: skip


def _unused_ranking_run(cfg: RefGenConfig) -> str:
    """Why a ranking run is not a reference (its curation reason)."""
    if cfg.refine:
        return (
            "ranking run: its env's top-N were trained again as references (refine = "
            f"{cfg.refine:g}); a fallback where they fail curation"
        )
    return (
        "ranking run of a candidate outside the top-N the env takes "
        f"(rank_env_order = {cfg.rank_env_order!r})"
    )


def _verdict(store: Store, run_id: str) -> str | None:
    """A run's curation verdict as its meta.json holds it (None: not curated)."""
    curation = store.open_run(run_id, episodes=False).meta.curation
    return curation.verdict if curation else None


def relabel_runs(store: Store, run_ids: set[str], desc: str, progress: bool = True) -> None:
    """Relabel every run of `run_ids` not relabelled yet (resumable: the flag is per run)."""
    from tqdm import tqdm

    for run_id in tqdm(sorted(run_ids), desc=desc, disable=not progress):
        if not store.open_run(run_id, episodes=False).meta.relabelled:
            relabel_run(store, run_id)


def fallback_references(
    store: Store,
    runs: dict[str, ManifestEntry],
    references: set[str],
    verdicts: dict[str, Curation],
    cfg: RefGenConfig,
    ranking_runs: set[str],
    progress: bool = True,
) -> dict[str, list[str]]:
    """Envs whose references all failed curation take their other ranking runs instead.

    A library's ranking can pick a candidate that did not learn on one of its envs (Mario's
    top-ranked PPO started high and did not improve, while A2C did). The env's ranking runs
    of the other candidates are then relabelled and curated among themselves (the failed
    runs do not set their best); those that pass become references. `ranking_runs` are the
    run ids of this config's ranking jobs: runs a store keeps from an earlier config (other
    budgets) are never taken. Updates `verdicts` and `references`; returns env -> the
    fallback runs that passed."""
    found: dict[str, list[str]] = {}
    for env_id in _failed_envs(runs, references, verdicts):
        others = {
            r
            for r, e in runs.items()
            if e.env_id == env_id and r in ranking_runs and r not in references
        }
        relabel_runs(store, others, f"fallback {env_id}", progress)
        fallback = curate_env_references(store, env_id, others, cfg)
        verdicts.update(fallback)
        passed = sorted(r for r, v in fallback.items() if v.verdict == "pass")
        references |= set(fallback)
        if passed:
            found[env_id] = passed
    return found


def _failed_envs(
    runs: dict[str, ManifestEntry], references: set[str], verdicts: dict[str, Curation]
) -> list[str]:
    """Envs with reference runs none of which passed curation."""
    passed = {runs[r].env_id for r, v in verdicts.items() if v.verdict == "pass"}
    return sorted({runs[r].env_id for r in references} - passed)


def train_fallbacks(
    store: Store,
    store_path: str,
    references: set[str],
    verdicts: dict[str, Curation],
    cfg: RefGenConfig,
    pool: list[Candidate],
    plans: dict[str, LibraryPlan],
    rankings: dict[str, Ranking],
    progress: bool = True,
    budget: StageBudget | None = None,
) -> dict[str, list[str]]:
    """Envs still without a passing run after `fallback_references` train the candidates the
    planner's `plan_fallbacks` names (untried candidates and new seeds); their runs are
    relabelled and curated among themselves, and those that pass become references. One
    batch of jobs for all such envs; resumable like every job. Updates `verdicts` and
    `references`; returns env -> the fallback runs that passed."""
    if not cfg.falls_back:
        return {}
    jobs = []
    for env_id in _failed_envs(store.runs(), references, verdicts):
        plan = next(lp for lp in plans.values() if env_id in lp.envs)
        jobs += plan_fallbacks(plan, env_id, pool, cfg, store_path, rankings.get(plan.library))
    if not jobs:
        return {}
    results = run_jobs(
        jobs, cfg.runner, cfg.workers, cfg.retries, progress, desc="train fallbacks", budget=budget
    )  # fmt: skip
    found: dict[str, list[str]] = {}
    for env_id in sorted({j.env_id for j in jobs}):
        new = {
            results[j.key].run_id
            for j in jobs
            if j.env_id == env_id and results[j.key].status == "done" and results[j.key].run_id
        }
        if not new:
            continue
        relabel_runs(store, new, f"fallback {env_id}", progress)
        fallback = curate_env_references(store, env_id, new, cfg)
        verdicts.update(fallback)
        references |= set(fallback)
        passed = sorted(r for r, v in fallback.items() if v.verdict == "pass")
        if passed:
            found[env_id] = passed
    return found


def curate_env_references(
    store: Store, env_id: str, references: set[str], cfg: RefGenConfig
) -> dict[str, Curation]:
    """Curate the reference runs of one env (ranking-only runs stay excluded) by the
    config's rules (its check floor where runs are checked)."""
    floor = cfg.check_floor if cfg.check_episodes else None
    return curate_env(store, env_id, cfg.alpha, cfg.best_fraction, references, floor)


def print_summary(summary: RefGenSummary) -> None:
    """One line per reference run, then the ranking of each library."""
    print(f"{'verdict':<8} {'final return':>12}  run (reasons)")
    for rid, r in summary.runs.items():
        fr, verdict = r.curation.final_return, r.curation.verdict
        why = f"  ({'; '.join(r.curation.reasons)})" if r.curation.reasons else ""
        stop = f"  [stopped: {r.stop}]" if r.stop else ""
        print(f"{verdict:<8} {'-' if fr is None else f'{fr:.4g}':>12}  {rid}{why}{stop}")
    for env_id, run_ids in summary.fallbacks.items():
        print(
            f"{env_id}: its references failed curation; fallback runs that passed: {list(run_ids)}"
        )
    if summary.stop_counts():
        print(
            "why the runs stopped: "
            + ", ".join(f"{k} {n}" for k, n in summary.stop_counts().items())
        )
    for lib, info in summary.libraries.items():
        print(
            f"{lib}: ranking {list(info.ranking)}, {info.references} reference runs, {len(info.failed)} failed jobs"
        )
