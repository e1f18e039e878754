"""Ranking: a library's candidates by pairwise one-tailed Welch tests on their ranking runs.

Owns `rank_library` (run the plan's ranking jobs, then rank) and `ranking_table` (points
per ranking env, summed per action kind and overall, written as the library's
`RankingTable`). A ranking run is ranked on what its deterministic policy played in its
check (ldm/refgen/check.py) where it played one: relabelling writes those actions, the LDM
copies them and the protocol scores the reference by them, while the training returns are
the exploring policy's. On 2026-12-07 InvertedDoublePendulum's ranking took sac-4env by its
training returns; its deterministic policy played 0.19 expert-normalised, where
ppo-8env-long's had played 0.95 in the run before. Runs without a check are ranked on their
training's final returns, as before. Imports numpy, ldm.data (a run's check returns), the
planner, the runner, curation's Welch test, the records and the hub (lazily, for an env's
action kind); must not import ldm.model or later parts.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from ldm.data import Store
from ldm.refgen.candidates import Candidate
from ldm.refgen.config import RefGenConfig
from ldm.refgen.curate import welch_greater
from ldm.refgen.jobs import JobResult
from ldm.refgen.plan import LibraryPlan, compatible
from ldm.refgen.records import RankedCandidate, RankingTable
from ldm.refgen.runner import run_jobs


def rank_library(lp: LibraryPlan, pool: list[Candidate], cfg: RefGenConfig, store: str,
                 progress: bool = True) -> RankingTable:  # fmt: skip
    """Run the plan's ranking jobs and rank the candidates (`ranking_table`)."""
    results = run_jobs(
        list(lp.rank_jobs),
        cfg.runner,
        cfg.workers,
        cfg.retries,
        progress,
        desc=f"rank {lp.library}",
    )
    return ranking_table(lp, pool, cfg, store, results)


def ranking_table(lp: LibraryPlan, pool: list[Candidate], cfg: RefGenConfig, store: str,
                  results: dict[str, JobResult]) -> RankingTable:  # fmt: skip
    """Points from pairwise one-tailed Welch tests on the ranking runs' returns
    (the deterministic check's where the run played one, else its training's last 10%).

    Points are also kept per action kind: compatibility splits candidates by action kind, so
    a continuous-control env takes its references from the ranking among continuous envs
    when the library has any. Writes `<store>/refgen/ranking-<library>.json`.
    """
    if not lp.rank_jobs:
        names = {c.name for e in lp.envs for c in compatible(pool, e)[0]}
        unranked = tuple(RankedCandidate(c.name, None) for c in pool if c.name in names)
        table = RankingTable(lp.library, unranked, note=lp.ranking_note)
        table.write(store)
        return table
    jobs = list(lp.rank_jobs)
    per_env: dict[str, dict[str, float]] = {}
    checked: dict[str, dict[str, float]] = {}
    env_points: dict[str, dict[str, int]] = {}
    runs = Store(store)
    for env_id in lp.rank_envs:
        done = {
            j.candidate.name: results[j.key]
            for j in jobs
            if j.env_id == env_id and results[j.key].status == "done"
        }
        per_env[env_id] = {n: float(np.mean(r.final_returns)) for n, r in done.items()}
        played = {n: check_returns(r, runs) for n, r in done.items()}  # each run read once
        finals = {n: played[n] or r.final_returns for n, r in done.items()}
        checked[env_id] = {n: float(np.mean(c)) for n, c in played.items() if c}
        own = env_points[env_id] = dict.fromkeys(finals, 0)
        for a, b in permutations(finals, 2):
            if welch_greater(finals[a], finals[b], cfg.alpha).greater:
                own[a] += 1
    # the library's and each action kind's points are sums of the envs' own
    points = {c.name: 0 for c in pool}
    by_kind: dict[str, dict[str, int]] = {}
    for env_id, own in env_points.items():
        kind_points = by_kind.setdefault(action_kind(env_id), {})
        for n, p in own.items():
            points[n] += p
            kind_points[n] = kind_points.get(n, 0) + p
    tried = {j.candidate.name for j in jobs}
    names = [c.name for c in pool]
    order = sorted(tried, key=lambda n: (-points[n], names.index(n)))
    table = RankingTable(
        lp.library,
        tuple(RankedCandidate(n, points[n]) for n in order),
        envs=tuple(lp.rank_envs),
        ranking_by_action_kind={
            k: tuple(sorted(kp, key=lambda n: (-kp[n], names.index(n))))
            for k, kp in by_kind.items()
        },
        final_returns=per_env,
        check_returns={e: c for e, c in checked.items() if c},
        by_env={
            e: tuple(sorted(p, key=lambda n: (-p[n], order.index(n))))
            for e, p in env_points.items()
        },
        skipped={e: lp.skipped.get(e, {}) for e in lp.rank_envs},
        failed={j.key: results[j.key].error for j in jobs if results[j.key].status == "failed"},
    )
    table.write(store)
    return table


def check_returns(result: JobResult, store: Store) -> tuple[float, ...]:
    """The returns a ranking run's deterministic check played (its run's `check_returns`;
    empty where the job played none or recorded no run)."""
    if result.job is None or not result.job.check_episodes or not result.run_id:
        return ()
    meta = store.open_run(result.run_id).meta  # check_returns is one of its episode keys
    return tuple(float(r) for r in meta.extra.get("check_returns") or ())


def action_kind(env_id: str) -> str:
    from ldm.envs import env_spaces

    return env_spaces(env_id)[1].kind
