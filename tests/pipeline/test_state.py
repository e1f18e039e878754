"""PipelineState: which stages of an output directory are finished, kept across processes."""

import json

import pytest

from ldm.pipeline.state import STAGES, PipelineState


def test_finished_stages_survive_a_new_process(tmp_path):
    state = PipelineState(tmp_path / "out")
    assert not any(state.done(s) for s in STAGES)
    assert state.seconds("refgen") is None
    state.set_config({"name": "x"})
    state.mark_done("refgen", 12.345, {"jobs": 3})
    state.mark_done("train", 1.04)

    again = PipelineState(tmp_path / "out")  # what a rerun reads
    assert again.done("refgen") and again.done("train") and not again.done("eval")
    assert again.seconds("refgen") == 12.3 and again.seconds("train") == 1.0
    data = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert data["config"] == {"name": "x"}
    assert data["stages"]["refgen"]["summary"] == {"jobs": 3}
    assert "summary" not in data["stages"]["train"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["pipeline.json"]


def test_clear_from_forgets_that_stage_and_every_later_one(tmp_path):
    state = PipelineState(tmp_path)
    for s in STAGES:
        state.mark_done(s, 1.0)
    assert state.clear_from("train") == ["train", "eval"]
    again = PipelineState(tmp_path)
    assert again.done("refgen") and not again.done("train") and not again.done("eval")
    assert again.clear_from("refgen") == list(STAGES)
    assert not any(PipelineState(tmp_path).done(s) for s in STAGES)
    with pytest.raises(ValueError):
        state.clear_from("deploy")
