"""`[heldout]`: envs and libraries whose references are generated but never trained on; the
held-out stage scores them zero-shot with the in-context gain, the two kinds apart."""

import pytest
import torch

import ldm.eval as E
from ldm.data import Store
from ldm.errors import ConfigError
from ldm.eval import EvalConfig
from ldm.eval.adaptation import HeldoutReport, in_context_report
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise
from ldm.model import LDMPolicy, preset
from ldm.pipeline.config import PipelineConfig
from ldm.pipeline.run import run_pipeline
from ldm.pipeline.state import PipelineState
from tests.data.conftest import DISC, VEC, record

SEEN, UNSEEN_ENV, UNSEEN_LIB = "a/Seen-v0", "a/Other-v0", "b/New-v0"
TEXT = """name = "h"
out = "{out}"
[refgen]
envs = ["{seen}"]
[train]
preset = "ldm-tiny"
model = {{ context = 32 }}
window = 32
[eval]
rollouts = 2
episodes = 10
video = false
references = false
"""


def _result(env_ids, cfg):
    """Each rollout's returns climb 0..9 (anchors 0 and 10): the last 3 episodes score 80,
    the first 3 score 10, over all 45."""
    envs = tuple(
        EnvResult(
            e,
            "ok",
            returns=(tuple(float(i) for i in range(10)),) * 2,
            episodes=20,
            mean_return=4.5,
            normalised_score=45.0,
            first10=0.0,
            last10=10.0,
        )
        for e in env_ids
    )
    return EvalResult("ldm", "store", cfg, envs, summarise(envs))


def test_in_context_gain_is_last_episodes_against_first_ones():
    report = in_context_report(_result([UNSEEN_ENV, UNSEEN_LIB], EvalConfig()), lambda e: e[0])
    a = report.envs[0]
    assert (a.score, a.first, a.last, a.gain, a.span) == (45.0, 10.0, 80.0, 70.0, 3)
    assert [(k.kind, k.envs, k.mean_gain) for k in report.kinds] == [("a", 1, 70.0), ("b", 1, 70.0)]


def test_a_kinds_headline_is_its_median_not_moved_by_a_reference_that_barely_improved():
    from dataclasses import replace

    base = _result(["b/A-v0", "b/B-v0", "b/C-v0"], EvalConfig())
    # C's reference improved by a sliver: its score explodes (anesthesim's zero-shot 4.4M%)
    envs = (*base.envs[:2], replace(base.envs[2], normalised_score=4.4e6, last10=1e-6))
    (kind,) = in_context_report(replace(base, envs=envs), lambda e: "unseen library").kinds
    assert kind.median_score == 45.0 and kind.mean_score > 1e6
    assert kind.median_gain == 70.0


def test_the_table_changes_refgen_and_training(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(
        TEXT.format(out=tmp_path / "o", seen=SEEN)
        + f'[heldout]\nenvs = ["{UNSEEN_ENV}"]\nlibraries = ["b"]\n'
    )
    refgen, train, _ = PipelineConfig.load(path).stages
    assert refgen.envs == [SEEN, UNSEEN_ENV] and refgen.libraries == ["b"]
    assert train.exclude == [UNSEEN_ENV, "b"]
    path.write_text(TEXT.format(out=tmp_path / "o", seen=SEEN) + '[heldout]\nenvs = ["b/X"]\n')
    assert PipelineConfig.load(path).held_out.kind("b/X") == "unseen env"
    for table, message in (
        ('envs = ["nolib"]', "not env ids"),
        ('envs = ["b/X"]\nlibraries = ["b"]', "in a held-out library already"),
        ("env = []", "unknown keys"),
    ):
        path.write_text(TEXT.format(out=tmp_path / "o", seen=SEEN) + f"[heldout]\n{table}\n")
        with pytest.raises(ConfigError, match=message):
            PipelineConfig.load(path)


def test_heldout_stage_scores_only_the_held_out_envs_apart(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    store = Store(out / "store")
    for i, env in enumerate((SEEN, UNSEEN_ENV, UNSEEN_LIB)):
        record(store, env, VEC, DISC, steps=60, streams=1, seed=i)
    state = PipelineState(out)
    state.mark_done("refgen", 1.0)
    state.mark_done("train", 1.0)
    torch.manual_seed(0)
    LDMPolicy(preset("ldm-tiny", context=32)).save_pretrained(out / "train" / "final")
    config = tmp_path / "p.toml"
    config.write_text(
        TEXT.format(out=out, seen=SEEN) + f'[heldout]\nenvs = ["{UNSEEN_ENV}"]\nlibraries = ["b"]\n'
    )
    played = []

    def fake_evaluate(policy, env_ids, store, cfg, **kw):
        played.append(list(env_ids))
        return _result(env_ids, cfg)

    monkeypatch.setattr(E, "evaluate", fake_evaluate)
    run_pipeline(config, progress=False)
    assert played == [[SEEN], [UNSEEN_ENV, UNSEEN_LIB]]  # trained envs, then the held-out ones
    report = HeldoutReport.load(out / "eval-heldout" / "heldout.json")
    assert {(e.env_id, e.kind, e.gain) for e in report.envs} == {
        (UNSEEN_ENV, "unseen env", 70.0),
        (UNSEEN_LIB, "unseen library", 70.0),
    }
    assert [k.kind for k in report.kinds] == ["unseen env", "unseen library"]
    assert (out / "eval-heldout" / "report.html").exists()
    headline = PipelineState(out).stage("heldout").summary["headline"]
    assert headline.startswith("unseen env: median score 45 over 1 envs, in-context gain 70.0")
    assert "unseen library  " in capsys.readouterr().out  # the printed table
    run_pipeline(config, progress=False)  # finished: nothing plays again
    assert len(played) == 2
