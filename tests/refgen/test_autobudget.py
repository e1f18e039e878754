"""ldm/refgen/autobudget.py and its callback: a run decides when it has learned, and says why
it stopped."""

import json

import numpy as np
import pytest

from ldm.errors import RefGenError
from ldm.refgen import RefGenConfig
from ldm.refgen.autobudget import AutoBudget, StopRecord, decide
from ldm.refgen.candidates import load_pool
from ldm.refgen.jobs import Job, JobResult
from ldm.refgen.plan import plan_jobs

RULE = AutoBudget(max_transitions=100_000, max_seconds=60, min_transitions=1000,
                  min_episodes=30, patience=0.25)  # fmt: skip
RNG = np.random.default_rng(0)
#: a curve that rose and then stayed: 20 episodes at ~0, 40 at ~100
LEARNED = np.concatenate([RNG.normal(0, 5, 20), RNG.normal(100, 5, 40)])
#: a curve still rising: each tenth well above the one before
RISING = np.linspace(0, 100, 60) + RNG.normal(0, 1, 60)
#: the transitions at which each of 60 episodes ended (of 6,000)
ENDS = np.arange(1, 61) * 100


def test_the_caps_end_a_run_whichever_comes_first():
    assert decide(RULE, LEARNED, ENDS, 100_000, 1.0, None)[0] == "cap: transitions"
    assert decide(RULE, RISING, ENDS, 6000, 60.0, None)[0] == "cap: seconds"


def test_no_run_stops_as_learned_before_its_minimum_transitions_and_episodes():
    assert decide(RULE, LEARNED, ENDS, 999, 1.0, 500) == (None, None)
    assert decide(RULE, LEARNED[:29], ENDS[:29], 6000, 1.0, 500) == (None, None)


def test_a_flat_improved_curve_stops_once_flat_for_half_the_run_a_rising_or_flat_one_goes_on():
    reason, seen = decide(RULE, LEARNED, ENDS, 6000, 1.0, None)  # first flat look: not yet
    assert reason is None and seen.improved and seen.flat
    reason, seen = decide(RULE, LEARNED, ENDS, 6000, 1.0, 4801)  # flat since 4,801: not 1.25x
    assert reason is None and seen.flat
    reason, seen = decide(RULE, LEARNED, ENDS, 6000, 1.0, 4800)  # flat since 4,800: 1.25x
    assert reason == "learned" and seen.p_improved < 0.05 and 0 < seen.gain_bound < 0.1
    reason, seen = decide(RULE, RISING, ENDS, 6000, 1.0, 1000)  # improved, not flat
    assert reason is None and seen.improved and not seen.flat
    fell = np.concatenate([RNG.normal(0, 5, 20), RNG.normal(100, 5, 20), RNG.normal(60, 5, 20)])
    reason, seen = decide(RULE, fell, ENDS, 6000, 1.0, 1000)  # fell from its peak: unstable
    assert reason is None and seen.improved and not seen.flat
    flat = RNG.normal(0, 5, 60)  # flat, never improved: curation would fail it; go on
    reason, seen = decide(RULE, flat, ENDS, 6000, 1.0, 1000)
    assert reason is None and not seen.improved
    # a noisy curve is not called flat on too little evidence: the same shape, noise 30
    rng = np.random.default_rng(1)
    noisy = np.concatenate([rng.normal(0, 30, 20), rng.normal(100, 30, 40)])
    reason, seen = decide(RULE, noisy, ENDS, 6000, 1.0, 1000)
    assert reason is None and seen.improved and seen.gain_bound > 0.1
    # the curve is over transitions: many short early episodes do not make a late rise flat
    # (40 episodes in the first 2,000 transitions, then 20 rising ones)
    ends = np.concatenate([np.arange(1, 41) * 50, 2000 + np.arange(1, 21) * 200])
    rising_late = np.concatenate([RNG.normal(0, 1, 40), np.linspace(10, 100, 20)])
    reason, seen = decide(RULE, rising_late, ends, 6000, 1.0, 1000)
    assert reason is None and seen.improved and not seen.flat


def test_bad_rules_and_hand_budgets_beside_a_rule_are_refused():
    with pytest.raises(RefGenError, match="min_transitions 5 is above max_transitions 4"):
        AutoBudget(max_transitions=4, min_transitions=5)
    with pytest.raises(RefGenError, match=r"auto_budget\] has unknown keys \['cap'\]"):
        RefGenConfig.from_dict({"envs": ["a/b"], "auto_budget": {"cap": 3}})
    with pytest.raises(RefGenError, match=r"sets auto_budget and \['budgets'\]"):
        RefGenConfig.from_dict({"envs": ["a/b"], "auto_budget": {}, "budgets": {"a/b": 5}})


def test_auto_jobs_take_the_cap_as_budget_and_their_key_names_the_rule(tmp_path):
    cfg = RefGenConfig(envs=["classic-control/CartPole-v1"], candidates=["ppo-8env"],
                       top_n=1, auto_budget=RULE)  # fmt: skip
    (job,) = plan_jobs(cfg, str(tmp_path))
    assert job.auto == RULE and job.budget == job.limit == 100_000
    assert job.key.endswith(f":auto-{RULE.tag}")
    other = AutoBudget(max_transitions=100_000, max_seconds=30)
    assert other.tag != RULE.tag  # another rule, other runs
    # the default step limit is part of the rule where set; unset, the tags of before stay
    assert AutoBudget().tag == "2220fd4c" != AutoBudget(default_step_limit=1000).tag
    with pytest.raises(RefGenError, match="default_step_limit must be >= 1"):
        AutoBudget(default_step_limit=0)
    back = JobResult.from_dict(json.loads(json.dumps(JobResult("done", job).to_dict())))
    assert back.job == job
    with pytest.raises(RefGenError, match="takes its cap"):
        Job("train", job.env_id, job.library, job.candidate, 5000, 0, "s", auto=RULE)


def test_a_job_ends_by_the_rule_and_records_why_in_its_meta_and_result(tmp_path):
    from ldm.data import Store
    from ldm.refgen.jobs import run_job

    cand = load_pool(None, ["ppo-8env"])[0]
    rule = AutoBudget(max_transitions=50_000, max_seconds=1.0, min_transitions=1,
                      check_every=256)  # fmt: skip
    job = Job("train", "classic-control/CartPole-v1", "classic-control", cand,
              rule.max_transitions, 0, str(tmp_path), auto=rule)  # fmt: skip
    out = run_job(job)
    meta = Store(tmp_path).open_run(out.run_id).meta
    assert out.stop.reason == meta.extra["stop"]["reason"] == "cap: seconds"
    assert out.stop.seconds >= 1.0 and out.transitions < 50_000
    assert out.stop.transitions == out.transitions and out.stop.steps_per_second > 0
    assert StopRecord.from_dict(meta.extra["stop"]) == out.stop


def test_time_left_of_auto_jobs_is_their_measured_wall_time_not_their_cap():
    from ldm.refgen.runner import _eta

    cand = load_pool(None, ["ppo-8env"])[0]
    auto = [Job("rank", f"classic-control/E{i}-v0", "classic-control", cand, RULE.max_transitions,
                0, "s", auto=RULE) for i in range(10)]  # fmt: skip
    fixed = [Job("rank", "classic-control/F-v0", "classic-control", cand, 60_000, 0, "s")]
    # 20 jobs took 1,000 s on 2 workers: 100 s each; 10 auto jobs left: 500 s = ~8 min, though
    # their caps (100k transitions at 1,000 transitions/s) would say 500 min
    text = _eta(1000.0, 1_000_000, 20, auto, {}, 2)
    assert text == "1,000 transitions/s, ~8 min left"
    # a fixed budget is timed by the transitions/s so far: 60k at 500/s a worker = 2 min of
    # one worker, 1 min of the two
    assert _eta(1000.0, 1_000_000, 20, [], {"f": fixed[0]}, 2).endswith("~1 min left")
