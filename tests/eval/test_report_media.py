"""The report's clips, reference learning curves and training curves."""

import base64
import json

import numpy as np

from ldm.data import Store
from ldm.eval import EvalConfig, write_report
from ldm.eval.report_media import (
    attach_reference_clips,
    checkpoint_scores,
    clips_section,
    learning_curves_section,
    reference_curves,
    training_curves_section,
)
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise
from ldm.spaces import SpaceSpec

OBS = SpaceSpec("continuous", (2,), low=(-1.0,) * 2, high=(1.0,) * 2)
ACT = SpaceSpec("discrete", (), "int64", n=2)


def _store(tmp_path):
    store = Store(tmp_path / "store")
    for seed, returns in ((0, [1.0, 2.0, 5.0, 9.0] * 5), (1, [0.0] * 20)):
        w = store.create_run("lib/Env-v0", "lib", OBS, ACT, 1, {"algorithm": "PPO", "seed": seed})
        for _ in range(4):
            w.append(np.zeros((1, 2)), np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1))
        rid = w.commit()
        store.update_meta(rid, {"curation": {"verdict": "pass"}, "episode_returns": returns})
    return store


def _result(policy, *envs):
    return EvalResult(policy, "s", EvalConfig(rollouts=1, episodes=1), envs, summarise(envs))


def _png_in(section):
    data = section.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(data)[:4] == b"\x89PNG"


def test_learning_curves_from_the_store(tmp_path):
    store = _store(tmp_path)
    curves = reference_curves(store, "lib/Env-v0")
    assert sorted(len(r) for _, r in curves) == [20, 20]
    results = _result("ldm", EnvResult("lib/Env-v0", "ok", reference_run=curves[0][0]))
    section = learning_curves_section(results, store)
    assert "first and last 10%" in section
    _png_in(section)
    assert learning_curves_section(_result("ldm", EnvResult("other/X-v0", "ok")), store) == ""


def test_training_curves_from_metrics_jsonl(tmp_path):
    train = tmp_path / "train"
    (train / "final").mkdir(parents=True)
    rows = [{"step": s, "train/loss": 3.0 / s} for s in range(1, 20)]
    rows += [{"step": 10, "val/accuracy": 0.5}, {"step": 19, "val/accuracy": 0.7}]
    (train / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    section = training_curves_section(train / "final")
    assert "Training curves" in section and "without periodic evaluation" in section
    _png_in(section)
    assert training_curves_section(tmp_path / "nowhere" / "final") == ""
    # with periodic evaluation: each env's score at the checkpoints, in step order
    rows += [
        {"step": 10, "eval/score/a/B-v0": 40.0, "eval/score/c/D-v0": 90.0, "eval/share_at_80": 0.5},
        {"step": 5, "eval/score/a/B-v0": 10.0, "eval/score/c/D-v0": None},
        {"step": 19, "eval/score/a/B-v0": 85.0, "eval/share_at_80": 1.0},
    ]
    (train / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert checkpoint_scores(rows) == {
        "a/B-v0": [(5, 10.0), (10, 40.0), (19, 85.0)],
        "c/D-v0": [(10, 90.0)],
    }
    section = training_curves_section(train / "final")
    assert "env score at checkpoints" in section and "without periodic evaluation" not in section
    assert section.count("data:image/png;base64,") == 2


def test_clips_beside_scores_with_relative_links_and_notes(tmp_path):
    out = tmp_path / "eval"
    (out / "clips").mkdir(parents=True)
    (out / "references" / "clips").mkdir(parents=True)

    results = _result(
        "ldm",
        EnvResult("a/B-v0", "ok", normalised_score=97.4, mean_return=12.0,
                  clip=str(out / "clips" / "a__B-v0.mp4")),
        EnvResult("c/D-v0", "ok", clip_note="render() raised X: no pygame"),
    )  # fmt: skip
    refs = _result(
        "references", EnvResult("a/B-v0", "ok", clip=str(out / "references/clips/a__B-v0.gif"))
    )
    results = attach_reference_clips(results, refs)
    assert results.env("c/D-v0").reference_clip is None
    section = clips_section(results, out)
    assert 'src="clips/a__B-v0.mp4"' in section and 'src="references/clips/a__B-v0.gif"' in section
    assert "score <b>97</b>" in section and "no clip: render() raised X: no pygame" in section
    page = write_report(results, out)["html"].read_text()
    assert "Watch it act" in page and 'src="clips/a__B-v0.mp4"' in page


def test_learning_curves_of_many_envs_draw_the_lowest_scores_only(tmp_path, monkeypatch):
    # one panel per env: 1,000 envs made a 62,500-pixel-high figure that took minutes
    import ldm.eval.report_media as media

    store = _store(tmp_path)
    monkeypatch.setattr(media, "MAX_CURVES", 2)
    monkeypatch.setattr(
        media, "all_reference_curves", lambda s, ids: {e: [("r", [1.0, 2.0, 3.0])] for e in ids}
    )
    grid, drawn = media._grid, []
    monkeypatch.setattr(media, "_grid", lambda n: drawn.append(grid(n)) or drawn[-1])
    envs = [EnvResult(f"lib/E{i}-v0", "ok", normalised_score=float(9 - i)) for i in range(5)]
    section = learning_curves_section(_result("ldm", *envs), store)
    assert "Drawn for the 2 of these 5 envs" in section
    ((_, axes),) = drawn
    assert [ax.get_title() for ax in axes] == ["lib/E3-v0", "lib/E4-v0"]  # the lowest scores


def test_learning_curves_read_the_manifest_once_for_every_env(tmp_path, monkeypatch):
    # once per env, the report of 1,000 envs of a 10,000-run store read 1,000 manifests
    store = _store(tmp_path)
    calls, runs = [], Store.runs
    monkeypatch.setattr(Store, "runs", lambda s, *a, **k: (calls.append(1), runs(s, *a, **k))[1])
    envs = [EnvResult(f"lib/E{i}-v0", "ok") for i in range(5)] + [EnvResult("lib/Env-v0", "ok")]
    section = learning_curves_section(_result("ldm", *envs), store)
    assert "first and last 10%" in section and calls == [1]
