"""PipelineState: which stages of an output directory are finished, kept across processes;
`ldm status` reads it."""

import json

import pytest

from ldm.errors import ConfigError
from ldm.pipeline.state import STAGES, PipelineState, RunSource, StageRecord
from ldm.pipeline.status_cli import main as status

#: pipeline.json as the suite's run wrote it (refgen and train done, eval not yet)
WRITTEN = {
    "stages": {
        "refgen": {"done": True, "seconds": 2606.6, "finished": 1795889236.715952},
        "train": {
            "done": True,
            "seconds": 2206.7,
            "finished": 1795891857.951117,
            "summary": {"checkpoint": "/work/runs/suite/train/final"},
        },
    },
    "config": {"name": "suite", "path": "configs/suite.toml"},
}


def test_finished_stages_survive_a_new_process(tmp_path):
    state = PipelineState(tmp_path / "out")
    assert not any(state.done(s) for s in STAGES)
    assert state.seconds("refgen") is None and state.stage("refgen") is None
    state.set_source(RunSource("x"))
    state.mark_done("refgen", 12.345, {"jobs": "3"})
    state.mark_done("train", 1.04)

    again = PipelineState(tmp_path / "out")  # what a rerun reads
    assert again.done("refgen") and again.done("train") and not again.done("eval")
    assert again.seconds("refgen") == 12.3 and again.seconds("train") == 1.0
    assert again.source == RunSource("x")
    data = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert data["config"] == {"name": "x"}
    assert data["stages"]["refgen"]["summary"] == {"jobs": "3"}
    assert "summary" not in data["stages"]["train"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["pipeline.json"]


def test_clear_from_forgets_that_stage_and_every_later_one(tmp_path):
    state = PipelineState(tmp_path)
    for s in STAGES:
        state.mark_done(s, 1.0)
    assert state.clear_from("train") == ["train", "eval", "unseen", "heldout", "adapt"]
    again = PipelineState(tmp_path)
    assert again.done("refgen") and not again.done("train") and not again.done("eval")
    assert again.clear_from("refgen") == list(STAGES)
    assert not any(PipelineState(tmp_path).done(s) for s in STAGES)
    with pytest.raises(ValueError, match="'deploy' is not one of"):
        state.clear_from("deploy")


def test_a_written_file_loads_and_is_written_back_unchanged(tmp_path):
    (tmp_path / "pipeline.json").write_text(json.dumps(WRITTEN))
    state = PipelineState(tmp_path)
    assert state.stage("train") == StageRecord(
        True, 2206.7, 1795891857.951117, {"checkpoint": "/work/runs/suite/train/final"}
    )
    assert state.source == RunSource("suite", "configs/suite.toml")
    assert state.to_dict() == WRITTEN
    state.mark_done("eval", 60.0, {"headline": "3/8 envs >= 80%"})
    data = json.loads((tmp_path / "pipeline.json").read_text())
    assert data["stages"]["refgen"] == WRITTEN["stages"]["refgen"]
    assert data["stages"]["eval"]["summary"] == {"headline": "3/8 envs >= 80%"}


def test_unknown_keys_are_named(tmp_path):
    bad = {**WRITTEN, "stages": {"train": {**WRITTEN["stages"]["train"], "secs": 1}}}
    (tmp_path / "pipeline.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=r"stage 'train' has unknown keys \['secs'\]"):
        PipelineState(tmp_path)
    (tmp_path / "pipeline.json").write_text(json.dumps({**WRITTEN, "version": 2}))
    with pytest.raises(ConfigError, match=r"unknown keys \['version'\]"):
        PipelineState(tmp_path)


def test_status_shows_each_stage_with_its_detail(tmp_path, capsys):
    assert status(str(tmp_path)) == 1
    assert "no pipeline has run here" in capsys.readouterr().out
    (tmp_path / "pipeline.json").write_text(json.dumps(WRITTEN))
    jobs = tmp_path / "store" / "refgen" / "jobs.json"
    jobs.parent.mkdir(parents=True)
    failed = {"status": "failed", "error": "boom", "traceback": None}
    jobs.write_text(json.dumps({"a": failed, "b": failed}))
    (tmp_path / "train" / "checkpoints" / "step-000200").mkdir(parents=True)
    (tmp_path / "train" / "checkpoints" / "step-000100").mkdir()
    PipelineState(tmp_path).mark_done("eval", 5.0, {"headline": "2/3 envs >= 80%"})
    assert status(str(tmp_path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"pipeline suite in {tmp_path}"
    assert lines[1].split() == ["refgen", "done", "2607", "s", "0", "jobs", "done,", "2", "failed"]
    assert lines[2].split() == ["train", "done", "2207", "s", "latest", "checkpoint", "step-000200"]
    assert lines[3].split()[:4] == ["eval", "done", "5", "s"]
    assert lines[3].endswith("2/3 envs >= 80%")
    assert lines[4].split()[:2] == ["unseen", "todo"]
    PipelineState(tmp_path).mark_done("unseen", 7.0, {"headline": "1/3 envs", "seed": "5000"})
    assert status(str(tmp_path)) == 0
    assert capsys.readouterr().out.splitlines()[4].endswith("seeds from 5000: 1/3 envs")


def test_status_of_a_config_shows_its_out_directory(tmp_path, capsys):
    out = tmp_path / "runs" / "quick"
    config = tmp_path / "quick.toml"
    config.write_text(
        f'name = "quick"\nout = "{out}"\n[profiles.big]\nout = "{tmp_path / "big"}"\n'
    )
    PipelineState(out).mark_done("refgen", 3.0, {})
    assert status(str(config)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"pipeline ? in {out}" and lines[1].split()[:2] == ["refgen", "done"]
    assert status(str(config), profile="big") == 1  # the profile's own `out`: nothing ran there
    assert f"{tmp_path / 'big'}: no pipeline has run here" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="does not exist"):
        status(str(tmp_path / "missing.toml"))


def test_a_stage_interrupted_twice_reports_the_time_of_every_attempt(tmp_path, monkeypatch):
    import ldm.pipeline.state as state_mod

    now = [100.0]
    monkeypatch.setattr(state_mod.time, "time", lambda: now[0])
    state = PipelineState(tmp_path)
    with pytest.raises(KeyboardInterrupt), state.clock("refgen", tick=3600):
        now[0] += 60
        raise KeyboardInterrupt  # a first attempt stopped after 60 s
    # a new process (the rerun) finds the 60 s, marked not done
    again = PipelineState(tmp_path)
    assert not again.done("refgen") and again.seconds("refgen") == 60.0
    now[0] = 1000.0  # hours later
    with pytest.raises(RuntimeError), again.clock("refgen", tick=3600):
        now[0] += 30
        raise RuntimeError("crash")  # a second one after 30 s
    third = PipelineState(tmp_path)
    assert third.seconds("refgen") == 90.0
    now[0] = 5000.0
    with third.clock("refgen", tick=3600) as done:
        now[0] += 40
        done()  # the attempt that finishes, 40 s
    final = PipelineState(tmp_path)
    assert final.done("refgen") and final.seconds("refgen") == 130.0


def test_a_killed_attempt_keeps_its_time_to_within_a_tick(tmp_path):
    """The clock's thread writes while the stage runs: a SIGKILL loses at most one tick."""
    import time

    state = PipelineState(tmp_path)
    with state.clock("train", tick=0.05):
        time.sleep(0.3)
        # what a process killed now would leave behind
        seen = PipelineState(tmp_path).stage("train")
        assert seen is not None and not seen.done and 0.2 <= seen.seconds <= 0.35


def test_a_stage_whose_clock_ticked_is_not_counted_twice(tmp_path):
    """The ticks write the attempt's time into the record; finishing must not add it again
    (the suite's third run reported 99 min for a 50-minute training)."""
    import time

    state = PipelineState(tmp_path)
    state.stages["train"] = StageRecord(False, 10.0, 0.0)  # an earlier attempt: 10 s
    with state.clock("train", tick=0.05) as done:
        time.sleep(0.3)  # several ticks
        done()
    seconds = PipelineState(tmp_path).seconds("train")
    assert 10.25 <= seconds <= 10.5, seconds
