"""ldm/eval/results.py: the evaluation's records and the results.json format they own."""

import json

import pytest

from ldm.errors import EvalError
from ldm.eval import EvalConfig
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise

#: a results.json as ldm wrote it before the records (a dict per env; a rejected env with
#: three keys; report-time keys added by mutation)
OLD_FILE = {
    "policy": "ldm",
    "store": "/tmp/store",
    "config": {"rollouts": 1, "episodes": 2, "deterministic": True, "seed": 1000},
    "envs": [
        {
            "env_id": "classic-control/CartPole-v1",
            "library": "classic-control",
            "returns": [[10.0, 30.0]],
            "episodes": 2,
            "seeds": [1234],
            "mean_return": 20.0,
            "status": "ok",
            "step_limit": None,
            "cut_episodes": 0,
            "reference_run": "r1",
            "first10": 10.0,
            "last10": 30.0,
            "normalised_score": 50.0,
            "clip": "clips/classic-control__CartPole-v1.mp4",
            "reference_score": 99.0,
            "reference_cut_episodes": None,
        },
        {"env_id": "mujoco/Humanoid-v5", "status": "failed", "error": "too many dims"},
    ],
    "summary": {
        "envs": 2,
        "scorable": 1,
        "failed": 1,
        "at_80": 0,
        "at_100": 0,
        "share_at_80": 0.0,
        "share_at_100": 0.0,
        "median_score": 50.0,
        "curve": {"thresholds": [0, 50, 100], "envs_at_or_above": [1, 1, 0]},
    },
    "seconds": 1.5,
    "model_calls": 7,
    "steps": 7,
}


def test_an_old_results_file_reads_as_records_and_writes_back_its_keys(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(OLD_FILE))
    res = EvalResult.load(tmp_path)  # a directory: its results.json
    cart = res.env("classic-control/CartPole-v1")
    assert cart.returns == ((10.0, 30.0),) and cart.normalised_score == 50.0
    assert cart.reference_score == 99.0 and cart.clip.endswith(".mp4")
    bad = res.env("mujoco/Humanoid-v5")
    assert (bad.status, bad.library, bad.error, bad.returns) == (
        "failed",
        "mujoco",
        "too many dims",
        (),
    )
    assert res.config == EvalConfig(rollouts=1, episodes=2)
    assert res.summary.curve.envs_at_or_above == (1, 1, 0) and res.summary_checked is None
    again = res.to_dict()
    # the file's keys survive; unset optional fields stay out of it, as before
    assert again["envs"][0] == {
        k: v for k, v in OLD_FILE["envs"][0].items() if k != "reference_cut_episodes"
    }
    assert "first10" not in again["envs"][1] and "clip" not in again["envs"][1]
    assert again["summary"] == OLD_FILE["summary"] and "summary_checked" not in again
    assert EvalResult.from_dict(again) == res


def test_a_misspelt_or_unknown_field_is_an_error_naming_it(tmp_path):
    with pytest.raises(
        EvalError,
        match=r"env 'a/B' in results.json has unknown keys \['normalized_score'\]; known: \[.*'normalised_score'",
    ):
        EnvResult.from_dict({"env_id": "a/B", "status": "ok", "normalized_score": 3.0})
    with pytest.raises(EvalError, match="status 'done' is not one of"):
        EnvResult("a/B", "done")
    with pytest.raises(EvalError, match=r"decoding 'mode' is not one of \('argmax', 'median'\)"):
        EvalConfig(decoding="mode")
    with pytest.raises(TypeError):
        EnvResult("a/B", "ok", normalized_score=3.0)
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    with pytest.raises(EvalError, match="is not a readable results.json"):
        EvalResult.load(bad)


def test_records_are_frozen_and_grow_by_copies():
    envs = (EnvResult("a/B", "ok", normalised_score=90.0), EnvResult("c/D", "cut"))
    res = EvalResult("ldm", "s", EvalConfig(), envs, summarise(envs))
    with pytest.raises(AttributeError):
        res.envs[0].normalised_score = 1.0
    more = res.with_env_values("heldout_accuracy", {"c/D": 0.75, "x/Y": 0.1})
    assert [e.heldout_accuracy for e in more.envs] == [None, 0.75]
    assert res.envs[1].heldout_accuracy is None  # the original is untouched
    with pytest.raises(EvalError, match="no field 'heldout'"):
        res.with_env_values("heldout", {})
    with pytest.raises(EvalError, match=r"x/Y was not evaluated; evaluated: \['a/B', 'c/D'\]"):
        res.env("x/Y")
    assert res.summary.scorable == 1 and res.summary.at_80 == 1
