import subprocess
import sys

import pytest
import torch

from ldm.data import Store
from ldm.errors import TrainError
from ldm.model import LDMPolicy
from ldm.train import TrainConfig, train
from tests.data.conftest import BOXA, DISC, VEC, record


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("s") / "store")
    record(store, "a/Vec-v0", VEC, DISC, steps=200, streams=2, seed=1)
    record(store, "a/Box-v0", VEC, BOXA, steps=200, streams=2, seed=2)
    return store


def cfg(store_, out, **kw):
    base = dict(
        store=str(store_.path),
        out=str(out),
        preset="ldm-tiny",
        model={"context": 32},
        window=32,
        steps=6,
        batch_size=8,
        micro_batch=4,
        lr=3e-3,
        checkpoint_every=3,
        log_every=1,
        val_every=3,
        val_batches=1,
        num_workers=0,
        threads=1,
    )
    return TrainConfig(**{**base, **kw})


def params(path):
    return {k: v.clone() for k, v in LDMPolicy.from_pretrained(path).state_dict().items()}


def test_loss_goes_down_and_checkpoint_acts(small_store, tmp_path):
    final = train(
        cfg(small_store, tmp_path / "a", steps=40, checkpoint_every=20, val_every=20),
        progress=False,
    )
    import json

    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["train/loss"] for x in lines if "train/loss" in x]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert any("val/accuracy/a/Vec-v0" in x for x in lines)
    card = (final / "README.md").read_text()  # the model card names the data it learnt from
    assert "`a/Vec-v0`" in card and "sha256:" in card and "40 optimizer steps" in card
    policy = LDMPolicy.from_pretrained(final)
    session = policy.start_session([VEC], [BOXA])
    (action,) = session.act([torch.zeros(3).numpy()])
    assert action.shape == (2,) and abs(action).max() <= 1.0


def test_the_final_step_is_validated(small_store, tmp_path):
    import json

    train(cfg(small_store, tmp_path / "v", steps=5, val_every=3), progress=False)
    lines = (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()
    steps = [x["step"] for x in map(json.loads, lines) if "val/accuracy" in x]
    assert steps == [3, 5]  # every val_every steps, and the model that is saved as final


def test_interrupted_and_resumed_equals_uninterrupted(small_store, tmp_path):
    full = train(cfg(small_store, tmp_path / "full"), progress=False)
    train(cfg(small_store, tmp_path / "cut", steps=3), progress=False)  # "interrupted" at step 3
    resumed = train(cfg(small_store, tmp_path / "cut"), progress=False)
    a, b = params(full), params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_clear_errors_before_training(small_store, tmp_path):
    with pytest.raises(TrainError, match="does not exist"):
        train(cfg(small_store, tmp_path / "x", store=str(tmp_path / "nope")))
    empty = Store(tmp_path / "empty")
    with pytest.raises(TrainError, match="empty"):
        train(cfg(empty, tmp_path / "x"))
    uncurated = Store(tmp_path / "unc")
    record(uncurated, "a/Vec-v0", VEC, DISC, steps=50, streams=2, verdict=None)
    with pytest.raises(TrainError, match="no curated"):
        train(cfg(uncurated, tmp_path / "x"))
    with pytest.raises(TrainError, match="fewer than the window"):
        train(cfg(small_store, tmp_path / "x", window=256, model={"context": 256}))
    train(cfg(small_store, tmp_path / "other", steps=3), progress=False)
    with pytest.raises(TrainError, match="another model"):
        train(cfg(small_store, tmp_path / "other", model={"context": 32, "obs_encoder": "paper"}))


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_keep_identical_parameters(small_store, tmp_path):
    import json

    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29517",
        "-m",
        "ldm.cli",
        "train",
        "--store",
        str(small_store.path),
        "--out",
        str(out),
        "--preset",
        "ldm-tiny",
        "--model",
        "context",
        "32",
        "--window",
        "32",
        "--steps",
        "4",
        "--batch-size",
        "8",
        "--micro-batch",
        "2",
        "--checkpoint-every",
        "2",
        "--val-every",
        "0",
        "--num-workers",
        "0",
        "--threads",
        "1",
    ]
    subprocess.run(cmd, check=True, timeout=300, capture_output=True)
    done = json.loads((out / "done.json").read_text())
    hashes = done["rank_param_hashes"]
    assert len(hashes) == 2 and hashes[0] == hashes[1] and done["step"] == 4
    assert (out / "final" / "model.safetensors").exists()


def test_periodic_evaluation_is_a_callback_run_in_eval_mode(small_store, tmp_path):
    calls = []

    def evaluate(model, store):
        calls.append((model.training, store.path))
        return {"eval/share_at_80": 0.25 * len(calls)}

    c = cfg(small_store, tmp_path / "e", steps=4, eval_every=2, val_every=0)
    with pytest.raises(TrainError, match="no evaluation was passed"):
        train(c, progress=False)
    train(c, progress=False, evaluate=evaluate)
    assert calls == [(False, small_store.path)] * 2
    import json

    lines = [json.loads(x) for x in (tmp_path / "e" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["step"], x["eval/share_at_80"]) for x in lines if "eval/share_at_80" in x] == [
        (2, 0.25),
        (4, 0.5),
    ]


def test_config_conflicts_are_rejected_when_the_config_is_made(small_store, tmp_path):
    with pytest.raises(TrainError, match="window 64 is outside 1..the model's context 32"):
        cfg(small_store, tmp_path, window=64)
    with pytest.raises(TrainError, match="batch_size 10 is not a multiple of micro_batch 4"):
        cfg(small_store, tmp_path, batch_size=10)
    with pytest.raises(TrainError, match="unknown preset 'ldm-nope'"):
        cfg(small_store, tmp_path, preset="ldm-nope")
    with pytest.raises(TrainError, match="obs_encoder 'x'"):
        cfg(small_store, tmp_path, model={"obs_encoder": "x"})
    with pytest.raises(TrainError, match="schedule 'linear'"):
        cfg(small_store, tmp_path, schedule="linear")
    assert not (tmp_path / "checkpoints").exists()
