"""The reference stage's shared hours: each job's seconds cap is its share of what is left."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ldm.errors import RefGenError
from ldm.refgen.autobudget import AutoBudget
from ldm.refgen.candidates import load_pool
from ldm.refgen.jobs import Job, JobResult
from ldm.refgen.stage_budget import StageBudget

RULE = AutoBudget(max_transitions=50_000, max_seconds=100.0, stage_hours=0.1, min_seconds=5.0)


def _job(env: str, cap: float | None = None) -> Job:
    cand = load_pool(None, ["ppo-8env"])[0]
    return Job("train", env, "lib", cand, RULE.max_transitions, 0, "/tmp/s", auto=RULE,
               seconds_cap=cap)  # fmt: skip


def _done(job: Job, seconds: float) -> JobResult:
    return JobResult(status="done", job=job, seconds=seconds)


def test_shares_split_what_is_left_and_pass_on_what_fast_runs_did_not_use() -> None:
    jobs = [_job(f"lib/E{i}") for i in range(12)]
    budget = StageBudget(360.0, 2, {j.key for j in jobs}, 5.0, 100.0)
    # 720 job-seconds over 12 jobs: 60 s each
    assert budget.share({}, [], jobs) == pytest.approx(60.0)
    # 6 jobs finished in 10 s each (they learned early): 660 left over 6 -> capped at 100
    results = {j.key: _done(j, 10.0) for j in jobs[:6]}
    assert budget.share(results, [], jobs[6:]) == 100.0
    # the other way round: 6 jobs used 110 s each -> 60 left over 6 -> 10 s
    results = {j.key: _done(j, 110.0) for j in jobs[:6]}
    assert budget.share(results, [], jobs[6:]) == pytest.approx(10.0)
    # running jobs reserve their caps; jobs planned but not handed over yet count as not started
    running = [_job("lib/E6", cap=20.0)]
    assert budget.share(results, running, jobs[7:8]) == pytest.approx(40 / 5)
    # spent: never below the floor
    results = {j.key: _done(j, 300.0) for j in jobs[:6]}
    assert budget.share(results, [], jobs[6:]) == 5.0


def test_a_jobs_overhead_beyond_its_training_is_charged_to_every_job() -> None:
    jobs = [_job(f"lib/E{i}") for i in range(6)]
    budget = StageBudget(300.0, 2, {j.key for j in jobs}, 5.0, 100.0)
    # 2 finished: 30 s of training each, 45 s on their workers: 15 s of overhead a job
    results = {j.key: replace(_done(j, 30.0), wall_seconds=45.0) for j in jobs[:2]}
    # 600 - 90 spent - (20 + 15) for the running one = 475 over 3 not started -> 158 - 15
    running = [replace(jobs[2], seconds_cap=20.0)]
    assert budget.share(results, running, jobs[3:]) == 100.0  # capped
    tight = StageBudget(100.0, 2, {j.key for j in jobs}, 1.0, 100.0)
    # 200 - 90 - 35 = 75 over 3 = 25, less the 15 s each job spends beyond its training
    assert tight.share(results, running, jobs[3:]) == pytest.approx(10.0)
    # a job recorded before jobs measured their wall time counts at its training + overhead
    old = {**results, jobs[2].key: _done(jobs[2], 30.0)}
    assert tight.share(old, [], jobs[3:]) == pytest.approx((200 - 135) / 3 - 15)


def test_unplanned_jobs_and_other_configs_runs() -> None:
    jobs = [_job(f"lib/E{i}") for i in range(4)]
    budget = StageBudget(100.0, 1, {j.key for j in jobs[:2]}, 1.0, 100.0)
    stranger = _job("other/X")  # a run of another config in the same store: not counted
    results = {jobs[0].key: _done(jobs[0], 40.0), stranger.key: _done(stranger, 1000.0)}
    # a fallback (unplanned) shares what is left with the planned job not started
    assert budget.share(results, [], [jobs[2]]) == pytest.approx(30.0)
    assert jobs[2].key in budget.extra


def test_the_cap_is_the_run_rule_and_not_in_the_key() -> None:
    a, b = _job("lib/E0"), _job("lib/E0", cap=12.0)
    assert a.key == b.key and a.run_id == b.run_id
    assert AutoBudget(max_seconds=100.0).tag == AutoBudget(max_seconds=100.0, stage_hours=2).tag
    capped = RULE.capped(12.0)
    assert capped.max_seconds == 12.0 and capped.min_seconds == 5.0
    assert RULE.capped(None) is RULE and RULE.capped(500.0) is RULE
    # jobs.json keeps the cap a job got; a job without one is written as before
    assert JobResult.from_dict(_done(b, 1.0).to_dict()).job == b
    assert "seconds_cap" not in _done(a, 1.0).to_dict()["job"]


def test_bad_stage_hours() -> None:
    with pytest.raises(RefGenError, match="stage_hours must be > 0"):
        AutoBudget(stage_hours=0)
    with pytest.raises(RefGenError, match=r"min_seconds in \(0, max_seconds 50"):
        AutoBudget(max_seconds=50, stage_hours=1, min_seconds=60)


def test_the_runner_gives_each_job_its_share_and_the_run_stops_at_it(tmp_path) -> None:
    from ldm.refgen.runner import JobManifest, run_jobs

    cand = load_pool(None, ["ppo-8env"])[0]
    rule = AutoBudget(max_transitions=200_000, max_seconds=60.0, min_transitions=100_000,
                      check_every=256, stage_hours=1.5 / 3600, min_seconds=1.0)  # fmt: skip
    job = Job("train", "classic-control/CartPole-v1", "classic-control", cand,
              rule.max_transitions, 0, str(tmp_path), auto=rule)  # fmt: skip
    # 1.5 s of stage on one worker, one planned job: its cap is 1.5 s, not the rule's 60 s
    budget = StageBudget(1.5, 1, {job.key}, rule.min_seconds, rule.max_seconds)
    out = run_jobs([job], workers=1, progress=False, budget=budget)[job.key]
    assert out.status == "done" and out.job.seconds_cap == 1.5
    # the runner measured the job's wall time: its training and its start-up, check, relabel
    assert out.wall_seconds > out.seconds >= 1.5
    assert out.stop.reason == "cap: seconds" and 1.5 <= out.stop.seconds < 10
    assert JobManifest(tmp_path).done(job).job.seconds_cap == 1.5
