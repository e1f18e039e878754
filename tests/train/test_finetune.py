"""`ldm finetune`: full and LoRA fine-tuning on K episodes, exact resume, the model card;
the sampler's K-episode cut and its held-out exclusion."""

import json
import shutil

import pytest
import torch

from ldm.cli import main as ldm_main
from ldm.data import Store, WindowSampler
from ldm.errors import StoreError, TrainError
from ldm.model import LDMPolicy
from ldm.train import TrainConfig, train
from ldm.train.finetune import finetune_config
from tests.data.conftest import BOXA, DISC, VEC, record

TINY = dict(batch_size=8, micro_batch=4, checkpoint_every=3, num_workers=0, threads=1, val_every=0)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A store of two pretraining envs and one new env, and a tiny model trained on the two."""
    root = tmp_path_factory.mktemp("ft")
    store = Store(root / "store")
    record(store, "a/Vec-v0", VEC, DISC, steps=120, streams=2, seed=1)
    record(store, "a/Box-v0", VEC, BOXA, steps=120, streams=2, seed=2)
    record(store, "b/New-v0", VEC, DISC, steps=200, streams=2, seed=3)
    cfg = TrainConfig(
        store=str(store.path),
        out=str(root / "base"),
        preset="ldm-tiny",
        model={"context": 32},
        window=32,
        steps=4,
        lr=3e-3,
        exclude=["b"],
        **TINY,
    )
    return store, train(cfg, progress=False)


def weights(path):
    return LDMPolicy.from_pretrained(path).state_dict()


def tune(base, out, **kw):
    store, ckpt = base
    settings = dict(steps=6, lr=3e-3, **TINY)
    settings.update(kw)
    k = settings.pop("episodes", 2)
    return finetune_config(str(ckpt), str(store.path), ["b/New-v0"], k, str(out), **settings)


def test_the_base_never_read_the_held_out_library(base):
    store, ckpt = base
    card = (ckpt / "README.md").read_text()
    assert "`a/Vec-v0`" in card and "b/New-v0" not in card


def test_full_finetune_from_the_command_line(base, tmp_path):
    store, ckpt = base
    out = tmp_path / "full"
    argv = ["finetune", str(ckpt), "--store", str(store.path), "--envs", "b/New-v0"]
    argv += ["--episodes", "2", "--out", str(out), "--steps", "4", "--batch-size", "8"]
    argv += ["--micro-batch", "4", "--lr", "3e-3", "--num-workers", "0", "--threads", "1"]
    assert ldm_main(argv) == 0
    before, after = weights(ckpt), weights(out / "final")
    assert before.keys() == after.keys()
    assert not torch.equal(before["head.weight"], after["head.weight"])
    card = (out / "final" / "README.md").read_text()
    assert "## Fine-tuning" in card and f"fine-tuned from `{ckpt}`" in card
    assert "full (every parameter)" in card and "the first 2 reference episodes" in card
    assert "  - `b/New-v0`" in card and "(trained on 2 environments)" in card
    tuning = json.loads((out / "final" / "config.json").read_text())["card"]["training"]
    assert tuning["envs"] == ["b/New-v0"] and tuning["tuning"]["episodes"] == 2


def test_lora_changes_only_the_backbone_and_saves_an_ordinary_checkpoint(base, tmp_path):
    _, ckpt = base
    final = train(tune(base, tmp_path / "lora", lora=True, lora_rank=4), progress=False)
    before, after = weights(ckpt), weights(final)  # from_pretrained: strict, no adapter keys
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("backbone.layers.") for k in changed)
    assert any(".self_attn.q_proj." in k for k in changed)
    assert any(".mlp.down_proj." in k for k in changed)
    card = (final / "README.md").read_text()
    assert "LoRA (rank 4, alpha 16)" in card and "merged into the weights" in card
    # the merged model acts like any checkpoint
    session = LDMPolicy.from_pretrained(final).start_session([VEC], [DISC])
    (action,) = session.act([torch.zeros(3).numpy()])
    assert 0 <= int(action) < 4


@pytest.mark.parametrize("parts", [("backbone",), ("encoder", "head")])
def test_init_parts_take_those_parts_only_and_the_rest_starts_new(base, tmp_path, parts):
    _, ckpt = base
    cfg = tune(base, tmp_path / "part", steps=1, lr=1e-12, init_parts=parts)  # ~no update
    final, before = weights(train(cfg, progress=False)), weights(ckpt)
    same = {k: torch.allclose(before[k], final[k], atol=1e-6) for k in before}
    taken = {k for k in before if k.split(".", 1)[0] in parts}
    assert taken and all(same[k] for k in taken)  # a taken part keeps the base's weights
    assert not all(same[k] for k in set(before) - taken)  # a new part starts elsewhere
    card = (tmp_path / "part" / "final" / "README.md").read_text()
    assert f"{'+'.join(parts)} from the base, the rest new" in card
    with pytest.raises(TrainError, match=r"init_parts \['decoder'\]: name parts of"):
        tune(base, tmp_path / "bad", init_parts=("decoder",))


@pytest.mark.parametrize("lora", [False, True])
def test_interrupted_and_resumed_finetune_equals_uninterrupted(base, tmp_path, lora):
    full = train(tune(base, tmp_path / "full", lora=lora), progress=False)
    train(tune(base, tmp_path / "cut", lora=lora, steps=3), progress=False)  # stopped at 3
    resumed = train(tune(base, tmp_path / "cut", lora=lora), progress=False)
    a, b = weights(full), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_k_episodes_cut_each_stream_at_an_episode_end(base):
    store, _ = base
    # episodes end every 20 steps on both streams; the last stream of a run is held out
    s = WindowSampler(store, 8, envs=["b/New-v0"], holdout="train", episodes=3)
    assert [(x.stream, x.length) for x in s.streams] == [(0, 60)]
    s = WindowSampler(store, 8, envs=["b/New-v0"], episodes=3)
    assert [(x.stream, x.length) for x in s.streams] == [(0, 40), (1, 20)]
    with pytest.raises(StoreError, match="b/New-v0: its curated runs hold 10 finished episodes"):
        WindowSampler(store, 8, envs=["b/New-v0"], holdout="train", episodes=50)


def test_excluded_runs_are_never_opened(base, tmp_path):
    store, _ = base
    copy = Store(shutil.copytree(store.path, tmp_path / "store"), create=False)
    for rid in copy.runs(env_id="b/New-v0"):  # unreadable: opening it would fail
        shutil.rmtree(copy.path / "runs" / rid)
    # the manifest still lists it: the sampler starts (from the manifest), drawing fails
    s = WindowSampler(copy, 8, weighting="env")
    assert "b/New-v0" in s.env_ids
    with pytest.raises(Exception):  # noqa: B017 - the run is gone: any reader error
        s.batch(64, seed=0, rank=0, index=0)
    for exclude in (["b"], ["b/New-v0"]):
        s = WindowSampler(copy, 8, weighting="env", exclude=exclude)
        assert s.env_ids == ["a/Box-v0", "a/Vec-v0"]
        s.batch(64, seed=0, rank=0, index=0)


def test_clear_errors(base, tmp_path):
    store, ckpt = base
    with pytest.raises(TrainError, match=r"no curated runs of \['c/Nope-v0'\]"):
        train(
            finetune_config(str(ckpt), str(store.path), ["b/New-v0", "c/Nope-v0"], 2, "x"),
            progress=False,
        )
    with pytest.raises(TrainError, match="not a readable LDM checkpoint"):
        finetune_config(str(tmp_path), str(store.path), ["b/New-v0"], 2, "x")
    with pytest.raises(TrainError, match="lora adapts a trained model"):
        TrainConfig(store=str(store.path), lora=True)
    with pytest.raises(TrainError, match="episodes must be >= 1"):
        tune(base, tmp_path / "e", episodes=0)
