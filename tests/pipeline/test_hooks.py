"""The periodic evaluation hook in a real (tiny) training run: each env's score is recorded at
the checkpoints in metrics.jsonl and the report plots it."""

import json

import numpy as np

from ldm.data import Store
from ldm.eval.report_media import checkpoint_scores, training_curves_section
from ldm.pipeline.hooks import env_evaluation
from ldm.spaces import SpaceSpec
from ldm.train import TrainConfig, train

ENV = "classic-control/CartPole-v1"


def _cartpole_store(path):
    """One curated CartPole run of made-up data: 20 episodes of 20 steps whose returns give
    the anchors first10 = 15 and last10 = 490 (and the protocol a 60-step episode cap)."""
    store = Store(path)
    obs = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
    act = SpaceSpec("discrete", (), "int64", n=2)
    w = store.create_run(ENV, "classic-control", obs, act, 1, {"algorithm": "PPO"})
    rng = np.random.default_rng(0)
    for ret in [10.0, 20.0, 480.0, 500.0] * 5:
        for t in range(20):
            end = np.array([t == 19])
            reward = np.array([ret if t == 19 else 0.0])
            w.append(rng.normal(size=(1, 4)), rng.integers(0, 2, 1), reward, end, np.zeros(1))
    rid = w.commit()
    store.write_reference_actions(rid, 0, store.open_run(rid).read(0, "actions"))
    store.update_meta(rid, {"curation": {"verdict": "pass"}})
    return store


def test_env_scores_at_checkpoints_are_logged_and_plotted(tmp_path):
    store = _cartpole_store(tmp_path / "store")
    cfg = TrainConfig(
        store=str(store.path),
        out=str(tmp_path / "train"),
        preset="ldm-tiny",
        model={"context": 16},
        window=16,
        steps=4,
        batch_size=4,
        micro_batch=4,
        checkpoint_every=2,
        log_every=1,
        val_every=0,
        eval_every=2,
        eval_episodes=1,
        num_workers=0,
        threads=1,
    )
    final = train(cfg, progress=False, evaluate=env_evaluation(cfg.eval_episodes))
    rows = [json.loads(x) for x in (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()]
    scores = checkpoint_scores(rows)
    assert list(scores) == [ENV] and [s for s, _ in scores[ENV]] == [2, 4]
    # a CartPole episode returns its length, 8 to 60 steps (the cap): 100 (R - 15) / 475
    assert all(-1.5 <= v <= 9.5 for _, v in scores[ENV]), scores
    shares = [r["eval/share_at_80"] for r in rows if "eval/share_at_80" in r]
    assert len(shares) == 2 and all(s in (0.0, 1.0) for s in shares)
    section = training_curves_section(final)
    assert "env score at checkpoints" in section and section.count("base64,") == 2
