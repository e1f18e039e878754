"""Held-out accuracy from the training log beside the env scores."""

import json

from ldm.eval import EvalConfig, write_report
from ldm.eval.heldout import attach_heldout_accuracy, heldout_accuracy
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise


def _results() -> EvalResult:
    envs = tuple(
        EnvResult(env_id, "ok", normalised_score=90.0, mean_return=1.0, first10=0.0, last10=1.1,
                  episodes=2)
        for env_id in ("a/X-v0", "b/Y-v0")
    )  # fmt: skip
    return EvalResult("ldm", "s", EvalConfig(rollouts=1, episodes=2), envs, summarise(envs))


def test_last_validation_per_env_is_attached_and_shown(tmp_path):
    log = tmp_path / "metrics.jsonl"
    lines = [
        {"step": 100, "train/loss": 2.0},
        {"step": 100, "val/accuracy/a/X-v0": 0.5, "val/accuracy": 0.5},
        {"step": 200, "val/accuracy/a/X-v0": 0.75, "val/loss/a/X-v0": 0.3},
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"step": 300, "val/acc')
    assert heldout_accuracy(tmp_path) == {"a/X-v0": 0.75}  # the line cut by a kill is skipped
    assert heldout_accuracy(tmp_path / "missing") == {}
    res = attach_heldout_accuracy(_results(), tmp_path)
    assert res.envs[0].heldout_accuracy == 0.75 and res.envs[1].heldout_accuracy is None
    assert "heldout_accuracy" not in res.to_dict()["envs"][1]
    html = write_report(res, tmp_path / "report")["html"].read_text()
    assert "held-out accuracy %" in html and ">75.0<" in html
