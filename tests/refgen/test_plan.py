"""The one job planner: the stage, the CLI and the dry run plan the same jobs and numbers."""

import numpy as np
import pytest

from ldm.data import Store
from ldm.errors import RefGenError
from ldm.pipeline.config import PipelineConfig
from ldm.pipeline.plan import plan
from ldm.refgen import stage
from ldm.refgen.candidates import load_pool
from ldm.refgen.config import RefGenConfig
from ldm.refgen.curate import best_threshold, curate_env
from ldm.refgen.jobs import Job, JobResult
from ldm.refgen.plan import EnvJobs, fallback_jobs_max, plan_jobs, plan_library
from ldm.refgen.records import RankingTable

from .test_refgen import _fake_run

QUICK = "configs/quickstart.toml"


def test_dry_run_numbers_of_the_quickstart_are_a_contract():
    p = plan(PipelineConfig.load(QUICK))
    # 8 envs x 3 seeds = 24 reference runs; 2 candidates ranked on 7 envs (2 + 2 + 1 + 1 + 1
    # over the 5 libraries) = 14 ranking runs, 7 of which are also seed 0 of a reference
    assert p.jobs == 31
    assert sum(lib.rank_jobs for lib in p.libraries.values()) == 14
    assert sum(lib.train_jobs for lib in p.libraries.values()) == 17
    cc = p.libraries["classic-control"].envs
    assert cc["classic-control/CartPole-v1"] == EnvJobs(
        jobs=4, transitions=160_000, budgets=(40_000,)
    )
    assert cc["classic-control/Acrobot-v1"].transitions == 4 * 50_000
    mj = p.libraries["mujoco"].envs
    # the per-env budget is used (the old planner counted the global budget everywhere)
    assert mj["mujoco/InvertedDoublePendulum-v5"].budgets == (60_000,)
    assert mj["mujoco/Reacher-v5"] == EnvJobs(jobs=3, transitions=150_000, budgets=(50_000,))
    assert p.transitions == 1_430_000 == p.transitions_max
    # what --dry-run prints
    printed = p.to_dict()
    assert printed["libraries"]["mujoco"]["envs"]["mujoco/Reacher-v5"] == {
        "jobs": 3,
        "transitions": 150_000,
        "budgets": [50_000],
    }
    assert printed["jobs"] == 31 and printed["estimated_storage_gb"] == p.estimated_storage_gb


def test_stage_runs_exactly_the_planned_jobs(monkeypatch, tmp_path):
    """The stage's (and `ldm refgen train`'s) jobs are the planner's, for any ranking."""
    cfg = RefGenConfig(
        envs=["classic-control/CartPole-v1", "classic-control/Acrobot-v1",
              "classic-control/MountainCarContinuous-v0"],
        candidates=["ppo-8env", "a2c-8env", "sac-fast"],
        rank_envs=2, top_n=1, seeds=2, rank_budget=1000, train_budget=2000,
        budgets={"classic-control/Acrobot-v1": 3000},
    )  # fmt: skip
    ran: list[Job] = []

    def fake_run_jobs(jobs, *a, **k):
        ran.extend(jobs)
        # a2c wins every comparison: the references differ from the pool's order
        return {
            j.key: JobResult(
                "done",
                j,
                final_returns=(2.0, 3.0, 2.5, 2.8) if "a2c" in j.key else (0.0, 0.1, 0.2, 0.0),
            )
            for j in jobs
        }

    monkeypatch.setattr(stage, "run_jobs", fake_run_jobs)
    pool = load_pool(None, cfg.candidates)
    envs = sorted(cfg.envs)
    table, _ = stage.rank_and_train({"classic-control": envs}, pool, cfg, str(tmp_path))[
        "classic-control"
    ]
    assert table.ranking[0].candidate == "a2c-8env"
    planned = plan_jobs(cfg, str(tmp_path))
    assert len({j.key for j in ran}) == len(planned)
    assert sorted(j.budget for j in {j.key: j for j in ran}.values()) == sorted(
        j.budget for j in planned
    )
    refs = [j for j in ran if j.candidate.name == "a2c-8env" and j.env_id.endswith("Acrobot-v1")]
    assert {j.budget for j in refs} == {3000}  # the per-env budget, for ranking and references
    # continuous actions take their reference from the candidates that can run there
    mc = {j.candidate.name for j in ran if "MountainCar" in j.env_id and j.phase == "train"}
    assert len(mc) == 1


def _classic_four(monkeypatch):
    """Acrobot, CartPole, MountainCar and Pendulum, with a stand-in runner on which a2c wins
    on Acrobot and ppo everywhere else."""
    acro, cart, mcar, pend = (
        f"classic-control/{e}"
        for e in ("Acrobot-v1", "CartPole-v1", "MountainCar-v0", "Pendulum-v1")
    )
    good, bad = (2.0, 3.0, 2.5, 2.8), (0.0, 0.1, 0.2, 0.0)

    def fake_run_jobs(jobs, *a, **k):
        wins = lambda j: ("a2c" in j.key) == (j.env_id == acro)  # noqa: E731
        return {j.key: JobResult("done", j, final_returns=good if wins(j) else bad) for j in jobs}

    monkeypatch.setattr(stage, "run_jobs", fake_run_jobs)
    return acro, cart, mcar, pend


@pytest.mark.parametrize("rank_env_order", ["library", "env"])
def test_an_env_ranked_on_takes_its_own_best_run_with_rank_env_order_env(
    monkeypatch, tmp_path, rank_env_order
):
    """ppo wins the library (it beats a2c on every ranking env but one), but on Acrobot a2c's
    ranking run is the better one. With rank_env_order = "env" Acrobot's reference is its a2c
    ranking run (no new job); the other ranking envs and the env the library was not ranked
    on take the library's winner. With "library" (the paper) every env takes ppo."""
    acro, cart, mcar, pend = _classic_four(monkeypatch)
    cfg = RefGenConfig(
        envs=[acro, cart, mcar, pend], candidates=["ppo-8env", "a2c-8env"], rank_envs=3,
        top_n=1, rank_budget=1000, train_budget=1000, rank_env_order=rank_env_order,
    )  # fmt: skip
    pool = load_pool(None, cfg.candidates)
    table, results = stage.rank_and_train(
        {"classic-control": sorted(cfg.envs)}, pool, cfg, str(tmp_path)
    )["classic-control"]
    # ranked round-robin over action kinds: Acrobot, Pendulum, CartPole; MountainCar is not
    assert sorted(table.envs) == [acro, cart, pend]
    assert table.candidates[0] == "ppo-8env"
    assert table.by_env[acro] == ("a2c-8env", "ppo-8env")
    assert table.by_env[cart] == table.by_env[pend] == ("ppo-8env", "a2c-8env")
    refs = {j.env_id: (j.candidate.name, j.phase) for j in (r.job for r in results.values())}
    own = "a2c-8env" if rank_env_order == "env" else "ppo-8env"
    assert refs[acro] == (own, "rank")  # its ranking run, not a new one
    assert refs[cart] == refs[pend] == ("ppo-8env", "rank")
    assert refs[mcar] == ("ppo-8env", "train")
    # the table keeps the per-env order through its file
    assert RankingTable.from_dict(table.to_dict()).by_env == table.by_env
    with pytest.raises(RefGenError, match="rank_env_order 'best' is not one of"):
        RefGenConfig(envs=[acro], rank_env_order="best")


def test_refine_trains_each_ranking_envs_winner_again_with_a_larger_share(monkeypatch, tmp_path):
    """With refine = 4 an env candidates were ranked on does not take its ranking run: its
    own winner (a2c on Acrobot, ppo elsewhere) trains again as its reference, and the stage's
    budget, replanned with the winners' jobs, weighs each such run as 4 ranking runs."""
    from ldm.refgen.autobudget import AutoBudget
    from ldm.refgen.stage_budget import StageBudget

    acro, cart, mcar, pend = _classic_four(monkeypatch)
    rule = AutoBudget(max_transitions=50_000, max_seconds=600.0, stage_hours=0.1, min_seconds=1.0)
    cfg = RefGenConfig(
        envs=[acro, cart, mcar, pend], candidates=["ppo-8env", "a2c-8env"], rank_envs=3,
        top_n=1, rank_env_order="env", refine=4.0, auto_budget=rule,
    )  # fmt: skip
    pool = load_pool(None, cfg.candidates)
    envs = sorted(cfg.envs)
    # planned before the ranking in the pool's order: Acrobot's ppo refine job is a guess
    budget = stage.stage_budget(cfg, pool, str(tmp_path), {"classic-control": envs})
    assert budget is not None and len(budget.planned) == 6 + 4  # 3 envs x 2 ranking runs
    table, results = stage.rank_and_train(
        {"classic-control": envs}, pool, cfg, str(tmp_path), progress=False, budget=budget
    )["classic-control"]
    refs = {j.env_id: (j.candidate.name, j.phase) for j in (r.job for r in results.values())}
    assert refs == {acro: ("a2c-8env", "train"), cart: ("ppo-8env", "train"),
                    pend: ("ppo-8env", "train"), mcar: ("ppo-8env", "train")}  # fmt: skip
    ranking = {j.key for lp in [plan_library("classic-control", envs, pool, cfg, str(tmp_path))]
               for j in lp.rank_jobs}  # fmt: skip
    assert not ranking & set(results)  # new runs, not the ranking runs again
    # the replanned stage: the ranking runs and the winners' reference runs, nothing else
    assert budget.planned == ranking | set(results)
    assert {k: budget.weights[k] for k in results} == {
        k: (1.0 if r.job.env_id == mcar else 4.0) for k, r in results.items()
    }
    # each refine run's share is 4 times a plain run's: 720 job-seconds over 3 x 4 + 1
    waiting = sorted((r.job for r in results.values()), key=lambda j: j.env_id != acro)
    done = {k: JobResult("done", None, seconds=0.0) for k in ranking}  # type: ignore[arg-type]
    assert budget.share(done, [], waiting) == pytest.approx(720 * 4 / 13)
    assert StageBudget(360.0, 2, set(budget.planned), 1.0, 600.0).share(
        done, [], waiting
    ) == pytest.approx(720 / 4)  # unweighted: an equal share
    with pytest.raises(RefGenError, match=r"refine must be >= 0 and needs \[refgen.auto_budget\]"):
        RefGenConfig(envs=[acro], refine=2.0)


def test_episode_budgets_reach_the_jobs_and_the_plan():
    cfg = RefGenConfig(
        envs=["classic-control/CartPole-v1"], candidates=["ppo-8env"], top_n=1, seeds=2,
        train_budget=5000, rank_budget=5000, min_episodes=30, max_budget_factor=3.0,
    )  # fmt: skip
    lp = plan_library(
        "classic-control", ["classic-control/CartPole-v1"], load_pool(None, ["ppo-8env"]), cfg, "s"
    )
    assert lp.ranking_note and not lp.rank_jobs  # one candidate <= N: no ranking
    assert [(j.budget, j.max_budget, j.min_episodes, j.limit) for j in lp.train_jobs] == [
        (5000, 15000, 30, 15000)
    ] * 2
    assert lp.train_jobs[0].key.endswith(":e30-15000")
    with pytest.raises(RefGenError, match="max_budget_factor"):
        RefGenConfig(envs=["x/y"], min_episodes=5, max_budget_factor=0.5)


@pytest.mark.parametrize(
    ("min_episodes", "max_budget", "lo", "hi", "why"),
    [
        (0, 0, 600, 600 + 256, "budget"),
        (60, 8000, 1200, 8000 + 256, "budget: episodes"),
        (100_000, 1500, 1500, 1500 + 256, "budget: limit"),
    ],
)
def test_a_run_ends_at_max_of_transitions_and_episodes_within_its_limit(
    tmp_path, min_episodes, max_budget, lo, hi, why
):
    from ldm.refgen.jobs import run_job

    cand = load_pool(None, ["ppo-8env"])[0]  # 8 streams, rollouts of 8 x 32
    job = Job("train", "classic-control/CartPole-v1", "classic-control", cand, 600, 0,
              str(tmp_path / "s"), min_episodes=min_episodes, max_budget=max_budget)  # fmt: skip
    out = run_job(job)
    assert out.status == "done" and lo <= out.transitions <= hi
    if min_episodes and min_episodes < 1000:
        assert out.episodes >= min_episodes  # random CartPole: ~20 steps an episode
    meta = Store(tmp_path / "s").open_run(out.run_id).meta
    assert meta.transitions == out.transitions
    # every run says why it stopped, in its meta and its result
    assert out.stop.reason == meta.extra["stop"]["reason"] == why
    assert out.stop.transitions == out.transitions and out.stop.episodes == out.episodes


def test_best_fraction_rule_for_negative_returns_and_a_best_near_zero(tmp_path):
    assert best_threshold(500.0, 20.0) == pytest.approx(475.0)  # the plain 95% rule
    assert best_threshold(-200.0, -1500.0) == pytest.approx(-200.0 - 0.05 * 1300)
    assert best_threshold(0.1, -300.0) == pytest.approx(0.1 - 0.05 * 300.1)
    store = Store(tmp_path / "s")
    # costs: all returns negative, long horizon (few episodes per run)
    best = _fake_run(store, "lib/Cost-v0", list(np.linspace(-1500, -200, 30)))
    near = _fake_run(store, "lib/Cost-v0", list(np.linspace(-1500, -240, 30)))
    far = _fake_run(store, "lib/Cost-v0", list(np.linspace(-1500, -600, 30)))
    v = curate_env(store, "lib/Cost-v0")
    assert v[best].verdict == "pass" and v[near].verdict == "pass"
    assert v[far].verdict == "fail" and "below 95%" in v[far].reasons[-1]
    m = store.open_run(best).meta
    assert m.first10 < m.last10 < 0  # anchors of negative returns keep their order


def test_rank_budgets_keep_the_ranking_short_and_give_the_reference_its_own_run():
    env = "classic-control/Acrobot-v1"
    cfg = RefGenConfig(
        envs=[env, "classic-control/CartPole-v1"], candidates=["ppo-8env", "a2c-8env"],
        rank_envs=2, top_n=1, rank_budget=1000, train_budget=2000,
        budgets={env: 9000}, rank_budgets={env: 3000},
    )  # fmt: skip
    pool = load_pool(None, cfg.candidates)
    lp = plan_library("classic-control", sorted(cfg.envs), pool, cfg, "s")
    ranks = {j.budget for j in lp.rank_jobs if j.env_id == env}
    refs = [(j.phase, j.budget) for j in lp.train_jobs if j.env_id == env]
    assert ranks == {3000}
    assert refs == [("train", 9000)]  # not the ranking run: a run of its own, at 9000
    # without rank_budgets the ranking run at 9000 is also the reference
    plain = RefGenConfig(**{**cfg.__dict__, "rank_budgets": {}})
    lp = plan_library("classic-control", sorted(cfg.envs), pool, plain, "s")
    assert {j.budget for j in lp.rank_jobs if j.env_id == env} == {9000}
    assert [(j.phase, j.budget) for j in lp.train_jobs if j.env_id == env] == [("rank", 9000)]


@pytest.mark.parametrize("name", ["budgets", "rank_budgets"])
def test_budgets_of_envs_the_stage_does_not_run_are_refused(name):
    cfg = RefGenConfig(envs=["classic-control/CartPole-v1"], **{name: {"CartPole-v1": 500}})
    with pytest.raises(RefGenError, match=rf"refgen.{name} names envs .*'CartPole-v1'"):
        plan_jobs(cfg, "s")
    with pytest.raises(RefGenError, match=rf"{name} must be >= 1"):
        RefGenConfig(envs=["classic-control/CartPole-v1"], **{name: {"x/y": 0}})


def _fake_run_jobs(store, learns, made: dict, ran: list | None = None):
    """A stand-in for the runner: each new job records a run whose returns climb when
    `learns(job)` and stay flat otherwise; a rerun finds its committed run (as the runner's
    manifest does). `made` collects the results by job key, `ran` every key asked for."""

    def run_jobs(jobs, *a, **k):
        for j in jobs:
            if ran is not None:
                ran.append(j.key)
            if j.key not in made:
                up = learns(j)
                returns = list(np.linspace(0, 100, 40) if up else [50.0, 52.0, 49.0, 51.0] * 10)
                rid = _fake_run(store, j.env_id, returns, run_id=j.run_id)  # as the runner names it
                made[j.key] = JobResult("done", j, rid, final_returns=tuple(returns[-4:]))
        return {j.key: made[j.key] for j in jobs}

    return run_jobs


@pytest.mark.parametrize("fallbacks", [0, 1, 2])
def test_an_env_whose_reference_fails_trains_the_next_candidates_until_one_passes(
    monkeypatch, tmp_path, fallbacks
):
    """Pendulum's library ranks on CartPole (A2C first); A2C does not learn Pendulum and it
    has no ranking runs to fall back on, so the next candidates in the order are trained."""
    from ldm.refgen.stage import run_refgen

    pend = "classic-control/Pendulum-v1"
    cfg = RefGenConfig(
        envs=["classic-control/CartPole-v1", pend],
        candidates=["ppo-8env", "a2c-8env", "sac-4env"],
        rank_envs=1, top_n=1, rank_budget=1000, train_budget=2000,
        fallback_candidates=fallbacks, workers=1,
    )  # fmt: skip
    store = Store(tmp_path / "s")
    learned = {("a2c-8env", "classic-control/CartPole-v1"), ("sac-4env", pend)}
    made: dict[str, JobResult] = {}
    ran: list[str] = []
    learns = lambda j: (j.candidate.name, j.env_id) in learned  # noqa: E731
    monkeypatch.setattr(stage, "run_jobs", _fake_run_jobs(store, learns, made, ran))
    # the dry run's bound: Pendulum has two untried candidates, CartPole (ranked on) none
    assert fallback_jobs_max(cfg, str(store.path)) == fallbacks
    summary = run_refgen(cfg, str(store.path), progress=False)
    by_candidate = {
        j.candidate.name: r.run_id
        for j, r in ((r.job, r) for r in made.values())
        if j.env_id == pend
    }
    trained = [k for k in ran if k.startswith("train:") and pend in k]
    # a2c is the reference; then ppo, then sac, as many as fallback_candidates allows
    assert [k.split(":")[1] for k in trained] == ["a2c-8env", "ppo-8env", "sac-4env"][
        : 1 + fallbacks
    ]
    runs = store.runs()
    assert runs[by_candidate["a2c-8env"]].verdict == "fail"
    if fallbacks == 2:
        assert summary.fallbacks == {pend: (by_candidate["sac-4env"],)}
        assert runs[by_candidate["ppo-8env"]].verdict == "fail"  # judged, not hidden
        assert runs[by_candidate["sac-4env"]].verdict == "pass"
    else:
        assert pend not in summary.fallbacks
        assert not any(runs[r].verdict == "pass" for r in by_candidate.values())
    # a rerun (resumed stage) trains nothing new and says the same
    made_before = dict(made)
    assert run_refgen(cfg, str(store.path), progress=False).fallbacks == summary.fallbacks
    assert made == made_before
    with pytest.raises(RefGenError, match="fallback_candidates must be >= 0"):
        RefGenConfig(envs=[pend], fallback_candidates=-1)


@pytest.mark.parametrize("refined_learns", [True, False])
def test_a_refined_reference_that_fails_curation_falls_back_on_the_ranking_runs(
    monkeypatch, tmp_path, refined_learns
):
    """With refine, Pendulum's winner trains again as its reference; its ranking runs are
    excluded from the data while the refined run passes, and are its fallback when it fails
    (nothing more is trained)."""
    from ldm.refgen.autobudget import AutoBudget
    from ldm.refgen.stage import run_refgen

    pend = "classic-control/Pendulum-v1"
    rule = AutoBudget(max_transitions=1000, max_seconds=60.0, min_transitions=100)
    cfg = RefGenConfig(
        envs=[pend], candidates=["a2c-8env", "sac-4env"], rank_envs=1, top_n=1,
        refine=3.0, auto_budget=rule, workers=1,
    )  # fmt: skip
    store = Store(tmp_path / "s")
    made: dict[str, JobResult] = {}
    learns = lambda j: j.phase == "rank" or refined_learns  # noqa: E731
    monkeypatch.setattr(stage, "run_jobs", _fake_run_jobs(store, learns, made))
    summary = run_refgen(cfg, str(store.path), progress=False)
    refined = [r for r in made.values() if r.job.phase == "train"]
    ranking = [r for r in made.values() if r.job.phase == "rank"]
    assert len(refined) == 1 and len(ranking) == 2  # one refined run, no fallback job
    runs = store.runs()
    assert runs[refined[0].run_id].verdict == ("pass" if refined_learns else "fail")
    if refined_learns:
        assert summary.fallbacks == {}
        assert {runs[r.run_id].verdict for r in ranking} == {"excluded"}
        why = store.open_run(ranking[0].run_id, episodes=False).meta.curation.reasons
        assert "trained again as references (refine = 3)" in why[0]
    else:
        assert summary.fallbacks == {pend: tuple(sorted(r.run_id for r in ranking))}
    with pytest.raises(RefGenError, match="refine must be >= 0"):
        RefGenConfig(envs=[pend], refine=-1.0, auto_budget=rule)


@pytest.mark.parametrize("reseeds", [0, 1, 2])
def test_an_env_ranked_on_whose_runs_all_fail_trains_its_top_candidates_with_a_new_seed(
    monkeypatch, tmp_path, reseeds
):
    """Pendulum is its library's only env: both candidates ranked on it, so no candidate is
    left untried. Neither seed-0 run learns; with `fallback_seeds` the first candidates of
    the ranking are trained again with seed 1 (a seed the config does not use), and those
    that learn become its references."""
    from ldm.refgen.stage import run_refgen

    pend = "classic-control/Pendulum-v1"
    cfg = RefGenConfig(
        envs=[pend], candidates=["a2c-8env", "sac-4env"], rank_envs=1, top_n=1,
        rank_budget=1000, train_budget=1000, fallback_candidates=2, fallback_seeds=reseeds,
        workers=1,
    )  # fmt: skip
    store = Store(tmp_path / "s")
    made: dict[str, JobResult] = {}
    # only a new seed learns
    monkeypatch.setattr(stage, "run_jobs", _fake_run_jobs(store, lambda j: j.seed == 1, made))
    # the dry run's bound: no untried candidate, `reseeds` of the 2 compatible ones again
    assert fallback_jobs_max(cfg, str(store.path)) == reseeds
    summary = run_refgen(cfg, str(store.path), progress=False)
    lib = summary.libraries["classic-control"]
    order = list(next(iter(lib.ranking_by_action_kind.values()), lib.ranking))
    reseeded = {r.job.candidate.name: r.run_id for r in made.values() if r.job.seed == 1}
    assert sorted(reseeded) == sorted(order[:reseeds])  # the ranking's first ones
    assert all(r.job.phase == "train" for r in made.values() if r.job.seed == 1)
    if reseeds:
        assert summary.fallbacks == {pend: tuple(sorted(reseeded.values()))}
        assert all(store.runs()[r].verdict == "pass" for r in reseeded.values())
    else:
        assert summary.fallbacks == {}
    made_before = dict(made)  # a resumed stage trains nothing new
    assert run_refgen(cfg, str(store.path), progress=False).fallbacks == summary.fallbacks
    assert made == made_before
    with pytest.raises(RefGenError, match="fallback_seeds must be >= 0"):
        RefGenConfig(envs=[pend], fallback_seeds=-1)
