"""ldm/pipeline/estimate.py: what is left of a run, from what its finished work measured."""

import json

from ldm.pipeline.estimate import refgen_left, train_left
from ldm.refgen import RefGenConfig
from ldm.refgen.autobudget import AutoBudget
from ldm.refgen.jobs import JobResult
from ldm.refgen.plan import plan_jobs

ENVS = ["classic-control/CartPole-v1", "classic-control/Acrobot-v1", "toy-text/FrozenLake-v1"]


def test_reference_time_left_is_the_jobs_to_go_at_the_finished_ones_mean(tmp_path):
    cfg = RefGenConfig(envs=ENVS, candidates=["ppo-8env"], top_n=1, workers=2,
                       auto_budget=AutoBudget(max_seconds=120))  # fmt: skip
    jobs = plan_jobs(cfg, str(tmp_path))
    assert len(jobs) == 3
    # nothing finished: every job at the seconds cap, 2 at once: 3 x 120 / 2 s
    assert refgen_left(cfg, tmp_path).minutes == 3.0
    (tmp_path / "refgen").mkdir()
    done = {jobs[0].key: JobResult("done", jobs[0], seconds=60.0).to_dict()}
    (tmp_path / "refgen" / "jobs.json").write_text(json.dumps(done))
    left = refgen_left(cfg, tmp_path)  # 2 to go at 60 s, 2 at once
    assert left.minutes == 1.0 and "2 of 3 jobs at 60 s each" in left.line()
    fixed = RefGenConfig(envs=ENVS[:1], candidates=["ppo-8env"], top_n=1)
    assert refgen_left(fixed, tmp_path / "none").minutes is None


def test_with_the_stage_hours_time_left_is_at_most_what_is_left_of_them(tmp_path):
    cfg = RefGenConfig(envs=ENVS, candidates=["ppo-8env"], top_n=1, workers=2,
                       auto_budget=AutoBudget(max_seconds=600, stage_hours=0.05))  # fmt: skip
    jobs = plan_jobs(cfg, str(tmp_path))
    # nothing finished: 3 jobs at the 600 s cap would be 15 min; the stage has 3
    left = refgen_left(cfg, tmp_path)
    assert left.minutes == 3.0 and "sharing what is left of the stage's 0.05 h" in left.line()
    (tmp_path / "refgen").mkdir()
    done = {jobs[0].key: JobResult("done", jobs[0], seconds=120.0).to_dict()}
    (tmp_path / "refgen" / "jobs.json").write_text(json.dumps(done))
    # 120 job-seconds on 2 workers spent: 180 - 60 = 120 s left (the mean says 2 x 120 / 2)
    assert refgen_left(cfg, tmp_path).minutes == 2.0
    done = {jobs[0].key: JobResult("done", jobs[0], seconds=12.0).to_dict()}
    (tmp_path / "refgen" / "jobs.json").write_text(json.dumps(done))
    # fast jobs: the mean's estimate (2 x 12 / 2 s) is below what is left of the hours
    assert "2 of 3 jobs at 12 s each" in refgen_left(cfg, tmp_path).line()


def test_training_time_left_is_the_steps_to_go_at_the_measured_rate(tmp_path):
    assert train_left(tmp_path, 100).minutes is None
    rows = [{"step": s, "time": 1000.0 + 3.0 * s, "loss": 1.0} for s in (10, 20, 30)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    left = train_left(tmp_path, 230)  # 200 steps at 3 s
    assert left.minutes == 10.0 and "200 of 230 steps at 3.00 s/step" in left.line()


def test_status_shows_why_runs_stopped_and_what_is_left(tmp_path, capsys):
    from ldm.pipeline.state import PipelineState, RunSource
    from ldm.pipeline.status_cli import main as status
    from ldm.refgen.autobudget import StopRecord

    config = tmp_path / "wide.toml"
    config.write_text(
        'name = "w"\nout = "x"\n[refgen]\nenvs = ' + json.dumps(ENVS) + "\n"
        'candidates = ["ppo-8env"]\ntop_n = 1\nworkers = 1\n'
        "[refgen.auto_budget]\nmax_seconds = 60.0\n[train]\nsteps = 100\n"
    )
    PipelineState(tmp_path).set_source(RunSource("w", str(config)))
    cfg = RefGenConfig(envs=ENVS, candidates=["ppo-8env"], top_n=1, workers=1,
                       auto_budget=AutoBudget(max_seconds=60.0))  # fmt: skip
    jobs = plan_jobs(cfg, str(tmp_path / "store"))
    why = ("learned", "cap: seconds")
    done = {
        j.key: JobResult("done", j, seconds=30.0, stop=StopRecord(w, 9000, 30.0, 40)).to_dict()
        for j, w in zip(jobs, why, strict=False)
    }
    (tmp_path / "store" / "refgen").mkdir(parents=True)
    (tmp_path / "store" / "refgen" / "jobs.json").write_text(json.dumps(done))
    assert status(str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "2 jobs done, 0 failed; stopped: learned 1, cap: seconds 1" in out
    assert "refgen left: ~0.5 min (1 of 3 jobs at 30 s each, 1 at once)" in out
    assert "train left: unknown (no steps measured yet)" in out


def test_status_counts_the_jobs_of_the_profile_the_run_was_made_with(tmp_path, capsys):
    # `ldm run configs/suite.toml --profile auto`: its jobs are other jobs than the base
    # config's; status counted the base's and said none of them was done
    from ldm.pipeline.state import PipelineState, RunSource
    from ldm.pipeline.status_cli import main as status

    config = tmp_path / "suite.toml"
    config.write_text(
        'name = "s"\nout = "x"\n[refgen]\nenvs = ' + json.dumps(ENVS) + "\n"
        'candidates = ["a2c-8env"]\ntop_n = 1\nworkers = 1\n[train]\nsteps = 100\n'
        '[profiles.auto.refgen]\ncandidates = ["ppo-8env"]\n'
        "[profiles.auto.refgen.auto_budget]\nmax_seconds = 60.0\n"
    )
    cfg = RefGenConfig(envs=ENVS, candidates=["ppo-8env"], top_n=1, workers=1,
                       auto_budget=AutoBudget(max_seconds=60.0))  # fmt: skip
    (job, *_) = plan_jobs(cfg, str(tmp_path / "store"))
    (tmp_path / "store" / "refgen").mkdir(parents=True)
    (tmp_path / "store" / "refgen" / "jobs.json").write_text(
        json.dumps({job.key: JobResult("done", job, seconds=30.0).to_dict()})
    )
    state = PipelineState(tmp_path)
    state.set_source(RunSource("s", str(config), "auto"))
    assert PipelineState(tmp_path).source.profile == "auto"  # recorded in pipeline.json
    assert status(str(tmp_path)) == 0
    assert "refgen left: ~1.0 min (2 of 3 jobs at 30 s each, 1 at once)" in capsys.readouterr().out
    state.set_source(RunSource("s", str(config)))  # a run recorded before profiles were
    assert status(str(tmp_path), profile="auto") == 0
    assert "(2 of 3 jobs at 30 s each" in capsys.readouterr().out
