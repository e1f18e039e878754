import json

import numpy as np
import pytest

from ldm.data import Store
from ldm.errors import TrainError
from ldm.eval import EvalConfig
from ldm.pipeline.scale_cli import ScaleConfig
from ldm.pipeline.scale_cli import main as scale
from ldm.pipeline.scale_records import PresetScale, ScalePoint, ScaleResults
from ldm.spaces import SpaceSpec
from ldm.train import TrainConfig


@pytest.fixture(scope="module")
def cartpole_store(tmp_path_factory):
    """CartPole windows from a balancing heuristic, with anchors (random 20, solved 500)."""
    store = Store(tmp_path_factory.mktemp("scale") / "store")
    obs = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
    act = SpaceSpec("discrete", (), "int64", n=2)
    rng = np.random.default_rng(0)
    w = store.create_run(
        "classic-control/CartPole-v1", "classic-control", obs, act, 1, {"algorithm": "PPO"}
    )
    actions = []
    for _ in range(300):
        o = rng.normal(0, 0.1, (1, 4)).astype(np.float32)
        a = (o[:, 2] + 0.5 * o[:, 3] > 0).astype(np.int64)
        w.append(o, a, np.ones(1), np.zeros(1), np.zeros(1))
        actions.append(a)
    rid = w.commit()
    store.write_reference_actions(rid, 0, np.concatenate(actions))
    store.update_meta(rid, {"curation": {"verdict": "pass"}, "first10": 20.0, "last10": 500.0})
    return store


def test_scale_trains_presets_evaluates_checkpoints_and_resumes(
    cartpole_store, tmp_path, monkeypatch
):
    kw = ScaleConfig(
        store=str(cartpole_store.path),
        presets="ldm-tiny,ldm-small",
        out=str(tmp_path / "scale"),
        points=2,
        train=TrainConfig(
            steps=4,
            batch_size=4,
            micro_batch=4,
            window=16,
            model={"context": 16},
            schedule="cosine",
            val_every=0,
        ),
        eval=EvalConfig(rollouts=1, episodes=1),
    )
    assert scale(kw) == 0
    res = json.loads((tmp_path / "scale" / "scale.json").read_text())
    assert ScaleResults.load(tmp_path / "scale" / "scale.json").to_dict() == res
    assert res["store"] == str(cartpole_store.path)
    tiny, small = res["presets"]["ldm-tiny"], res["presets"]["ldm-small"]
    assert tiny["params"] < small["params"]
    for r in (tiny, small):
        assert [p["step"] for p in r["points"]] == [2, 4]
        assert r["points"][0]["transitions"] < r["points"][1]["transitions"]
        assert all(0.0 <= p["share_at_80"] <= 1.0 for p in r["points"])
        assert set(r["points"][0]["scores"]) == {"classic-control/CartPole-v1"}
    png = tmp_path / "scale" / "scale.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    # a rerun neither retrains nor re-evaluates: the same figures come back
    weights = sorted((tmp_path / "scale").glob("*/**/model.safetensors"))
    assert len(weights) == 6  # 2 presets x (2 checkpoints + final)
    before = [w.stat().st_mtime_ns for w in weights]

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a finished checkpoint was evaluated again")

    monkeypatch.setattr("ldm.eval.evaluate", no_evaluation)
    assert scale(kw) == 0
    assert json.loads((tmp_path / "scale" / "scale.json").read_text())["presets"] == res["presets"]
    assert [w.stat().st_mtime_ns for w in weights] == before
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_scale_rejects_unknown_presets_before_training(cartpole_store, tmp_path):
    with pytest.raises(TrainError, match="ldm-huge"):
        scale(ScaleConfig(str(cartpole_store.path), presets="ldm-tiny,ldm-huge", out=str(tmp_path)))
    assert not (tmp_path / "ldm-tiny").exists()


def test_scale_results_keep_points_in_step_order_and_name_unknown_keys(tmp_path):
    p4 = ScalePoint(4, 400, 0.5, 0.0, 60.0, {"a/B-v0": 60.0})
    p2 = ScalePoint(2, 200, 0.0, 0.0, None, {"a/B-v0": None})
    res = ScaleResults(store="s").with_preset("ldm-tiny", 10).with_point("ldm-tiny", p4)
    res = res.with_preset("ldm-tiny", 12).with_point("ldm-tiny", p2)
    assert res.presets["ldm-tiny"] == PresetScale(12, (p2, p4))
    res.write(tmp_path / "scale.json")
    assert ScaleResults.load(tmp_path / "scale.json") == res
    assert ScaleResults.load(tmp_path / "missing.json") == ScaleResults()
    bad = {"presets": {"ldm-tiny": {"params": 1, "points": [{"step": 1, "share": 0.5}]}}}
    with pytest.raises(TrainError, match=r"scale.json point has unknown keys \['share'\]"):
        ScaleResults.from_dict(bad)


def test_the_env_sample_spreads_over_libraries_and_is_the_seeds():
    from ldm.pipeline.scale_cli import env_sample

    envs = [f"lib{i}/E{j}-v0" for i in range(5) for j in range(i + 1)]  # 15 envs, 5 libraries
    five = env_sample(envs, 5, 0)
    assert len({e.split("/")[0] for e in five}) == 5  # one of each library first
    assert env_sample(envs, 5, 0) == five and env_sample(envs, 7, 1) != env_sample(envs, 7, 2)
    nine = env_sample(envs, 9, 3)
    assert len(nine) == len(set(nine)) == 9 and set(nine) <= set(envs)
    assert env_sample(envs, 0, 0) == env_sample(envs, 99, 0) == sorted(envs)
    with pytest.raises(TrainError, match="eval_envs must be >= 0"):
        ScaleConfig("s", eval_envs=-1)
