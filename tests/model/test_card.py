"""The model card written by save_pretrained, and loading by folder or Hub id (offline)."""

import json
import shutil

import numpy as np
import pytest
import torch

from ldm.errors import ModelError
from ldm.eval import EvalConfig
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise
from ldm.model import LDMPolicy, preset
from ldm.model.card import (
    EnvScore,
    EvalFacts,
    TrainingFacts,
    eval_facts,
    preset_name,
    record_evaluation,
)
from tests.model.test_policy import mixed_batch

FACTS = TrainingFacts(
    "ldm-tiny",
    ("classic-control/CartPole-v1", "minigrid/MiniGrid-Empty-5x5-v0"),
    "/data/store",
    "sha256:0123456789abcdef",
    700,
    32,
    128,
)


def _front_matter(text: str) -> dict:
    import yaml

    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


def test_save_pretrained_writes_a_hub_model_card(tmp_path):
    model = LDMPolicy(preset("ldm-tiny")).eval()
    model.training_facts = FACTS
    d = model.save_pretrained(tmp_path / "ck")
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    text = (d / "README.md").read_text()
    meta = _front_matter(text)
    assert meta["library_name"] == "ldm"
    assert meta["pipeline_tag"] == "reinforcement-learning"
    assert "env-library:minigrid" in meta["tags"] and "env-library:classic-control" in meta["tags"]
    assert "model-index" not in meta  # not evaluated yet
    assert f"{model.num_params():,}" in text
    assert "sha256:0123456789abcdef" in text
    assert "`minigrid/MiniGrid-Empty-5x5-v0`" in text
    assert "Not evaluated yet" in text
    assert 'LDMPolicy.from_pretrained("PATH_OR_HUB_ID")' in text
    # the huggingface_hub parser reads it back
    from huggingface_hub import ModelCard

    assert ModelCard.load(d / "README.md").data.library_name == "ldm"


def _results(*envs):
    cfg = EvalConfig(rollouts=2, episodes=10, deterministic=True)
    return EvalResult("ldm", "store", cfg, envs, summarise(envs))


def test_facts_survive_a_reload_and_evaluation_is_recorded(tmp_path):
    model = LDMPolicy(preset("ldm-tiny")).eval()
    model.training_facts = FACTS
    d = model.save_pretrained(tmp_path / "ck")
    results = _results(
        EnvResult(
            "classic-control/CartPole-v1",
            "ok",
            returns=((500.0, 480.0), (500.0, 500.0)),
            mean_return=495.0,
            normalised_score=99.0,
        ),
        EnvResult("x/Broken-v0", "failed"),
    )
    record_evaluation(d, results, "1 of 1 envs at >= 80% of reference")
    text = (d / "README.md").read_text()
    assert "**1 of 1 envs at >= 80% of reference**" in text
    assert "| classic-control/CartPole-v1 | 99 | 495 |" in text
    (res,) = _front_matter(text)["model-index"][0]["results"]
    assert res["dataset"]["type"] == "classic-control/CartPole-v1"
    assert res["metrics"][0]["value"] == "495.00 +/- 8.66"
    loaded = LDMPolicy.from_pretrained(d)
    assert loaded.training_facts == FACTS
    assert loaded.eval_facts.envs[0] == EnvScore(
        "classic-control/CartPole-v1", 495.0, pytest.approx(8.660254), 99.0
    )
    # an evaluation of fewer envs (a look at one env) leaves the card's evaluation as it is
    one = _results(EnvResult("x/Other-v0", "ok", returns=((1.0,),), mean_return=1.0))
    assert record_evaluation(d, one, "0 of 1 envs") is None
    assert (d / "README.md").read_text() == text
    # re-saving keeps both (a checkpoint copied or fine-tuned carries its card)
    loaded.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "README.md").read_text() == text


def test_eval_facts_and_preset_name():
    f = eval_facts(_results(), "h")
    assert f == EvalFacts("h", f.protocol, ())
    assert preset_name(preset("ldm-small", context=128)) == "ldm-small"
    assert preset_name(preset("ldm-tiny", layers=3)) == "custom"


def _hub_cache(root, repo_id, src):
    """Lay a checkpoint out as huggingface_hub's cache does (refs/main -> snapshots/<rev>)."""
    rev = "0" * 40
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    shutil.copytree(src, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)


def test_from_pretrained_by_hub_id_offline_from_the_cache(tmp_path, monkeypatch):
    model = LDMPolicy(preset("ldm-tiny")).eval()
    src = model.save_pretrained(tmp_path / "ck")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    _hub_cache(tmp_path / "hub", "someone/ldm-tiny-test", src)
    monkeypatch.chdir(tmp_path)  # no local folder of that name
    loaded = LDMPolicy.from_pretrained("someone/ldm-tiny-test")
    batch = mixed_batch(np.random.default_rng(0), T=4).to()
    torch.testing.assert_close(model(batch), loaded(batch), atol=0, rtol=0)
    # not cached and offline: a clear error naming the id and the way out
    with pytest.raises(ModelError, match=r"'someone/not-cached'.*hf download someone/not-cached"):
        LDMPolicy.from_pretrained("someone/not-cached")


def test_a_local_folder_wins_over_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    LDMPolicy(preset("ldm-tiny")).save_pretrained(tmp_path / "owner" / "name")
    assert LDMPolicy.from_pretrained("owner/name").config == preset("ldm-tiny")
    assert json.loads((tmp_path / "owner/name/config.json").read_text())["num_params"] > 0


def test_the_cards_how_to_use_code_runs_as_written(tmp_path):
    """The card's Python block, run as a reader would (the folder for PATH_OR_HUB_ID, a few
    steps instead of 1000): gymnasium.make of a catalogued env, the agent, SB3's predict."""
    ck = LDMPolicy(preset("ldm-tiny")).save_pretrained(tmp_path / "final")
    text = (ck / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "policy.agent(env)" in code and "range(1000)" in code
    code = code.replace("PATH_OR_HUB_ID", str(ck)).replace("range(1000)", "range(30)")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    try:
        assert scope["agent"].session.steps == 30  # one context over the 30 steps
    finally:
        scope["env"].close()
