"""`ldm refgen ...`: rank, train, relabel, curate, or all of it from a config file.

Owns: the `COMMANDS` of `ldm refgen`. Imports refgen's modules inside each command; must not
import ldm.model, ldm.train, ldm.eval or ldm.pipeline.
"""

from __future__ import annotations

from pathlib import Path

import tomllib
import tyro

from ldm.refgen.config import RefGenConfig


def _load(config: str | None) -> dict:
    if config is None:
        return {}
    data = tomllib.loads(Path(config).read_text())
    return data.get("refgen", data)


def all_(config: str, store: str | None = None) -> int:
    """The whole stage from a config file: rank, train, relabel, curate (resumable).

    Args:
        config: TOML file with the stage's settings (a [refgen] table or top-level keys,
            the fields of RefGenConfig).
        store: Trajectory store directory (default: the config's `store` key).
    """
    from ldm.refgen.stage import print_summary, run_refgen

    settings = _load(config)
    store = store or settings.pop("store", None)
    settings.pop("store", None)
    if store is None:
        raise SystemExit("give --store or a `store` key in the config")
    print_summary(run_refgen(RefGenConfig.from_dict(settings), store))
    return 0


def rank(
    library: tyro.conf.Positional[str],
    store: str,
    cfg: tyro.conf.OmitArgPrefixes[RefGenConfig] = RefGenConfig(libraries=["-"]),
) -> int:
    """Rank the candidate pool on K envs of a library (pairwise one-tailed Welch tests).

    Args:
        library: Library name from the catalog.
        store: Trajectory store directory (ranking runs are recorded into it).
        cfg: Settings (budgets, K, candidates, runner).
    """
    from dataclasses import replace

    from ldm.refgen.candidates import load_pool
    from ldm.refgen.plan import envs_by_library, plan_library
    from ldm.refgen.ranking import rank_library

    cfg = replace(cfg, libraries=[library], envs=[])
    pool = load_pool(cfg.pool, cfg.candidates)
    lp = plan_library(library, envs_by_library(cfg)[library], pool, cfg, store)
    table = rank_library(lp, pool, cfg, store)
    for i, r in enumerate(table.ranking, 1):
        print(f"{i:>2}. {r.candidate:<16} {r.points} points")
    return 0


def train(store: str, cfg: tyro.conf.OmitArgPrefixes[RefGenConfig]) -> int:
    """Rank (where there are more than N candidates) and train the top-N references of every
    env; no relabel/curate. The jobs are the planner's, as in `ldm refgen all` and the dry run.

    Args:
        store: Trajectory store directory.
        cfg: Settings.
    """
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.plan import envs_by_library
    from ldm.refgen.stage import rank_and_train

    pool = load_pool(cfg.pool, cfg.candidates)
    rank_and_train(envs_by_library(cfg), pool, cfg, store)  # the jobs of `ldm refgen all`
    return 0


def relabel(store: tyro.conf.Positional[str]) -> int:
    """Write the final policy's deterministic actions as reference actions, for every run
    not relabelled yet.

    Args:
        store: Trajectory store directory.
    """
    from ldm.data import Store
    from ldm.refgen.curate import relabel_run

    s = Store(store, create=False)
    for run_id in s.runs():
        meta = s.open_run(run_id, episodes=False).meta
        if not meta.relabelled and meta.extra.get("policy_file"):
            print(f"{run_id}: {relabel_run(s, run_id)} observations relabelled")
    return 0


def curate(
    store: tyro.conf.Positional[str], alpha: float = 0.05, best_fraction: float = 0.95
) -> int:
    """Mark runs without significant improvement or below best_fraction of the best run.

    Args:
        store: Trajectory store directory.
        alpha: Significance level of the one-tailed Welch test (first vs last 10% of episodes).
        best_fraction: Runs below this fraction of the best run on the same env fail.
    """
    from ldm.data import Store
    from ldm.refgen.curate import curate_env

    s = Store(store, create=False)
    runs = {r: e for r, e in s.runs().items() if e.verdict != "excluded"}
    for env_id in sorted({e.env_id for e in runs.values()}):
        for run_id, v in curate_env(s, env_id, alpha, best_fraction, only=set(runs)).items():
            print(f"{v.verdict:>4} {env_id} {run_id} {'; '.join(v.reasons)}")
    return 0


COMMANDS = {"rank": rank, "train": train, "relabel": relabel, "curate": curate, "all": all_}
