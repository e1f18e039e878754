import numpy as np
import pytest
import torch

from ldm import tokenizer as tk
from ldm.errors import ModelError
from ldm.model import PRESETS, LDMPolicy, preset
from ldm.spaces import SpaceSpec

DISC_OBS = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
DISC_ACT = SpaceSpec("discrete", (), "int64", n=3)
CONT_ACT = SpaceSpec("continuous", (2,), low=(-1.0, -1.0), high=(1.0, 1.0))
MD_ACT = SpaceSpec("multi_discrete", (2,), "int64", nvec=(3, 4))
IMG_OBS = SpaceSpec("image", (64, 64, 3), "uint8")


def synthetic_window(obs_spec, act_spec, T, rng):
    """Windows where the right action is a function of the observation (learnable)."""
    if obs_spec.kind == "image":
        obs = rng.integers(0, 255, (T, 64, 64, 3), dtype=np.uint8)
        key = obs[:, :, :, 0].mean(axis=(1, 2)) > 127
    else:
        obs = rng.normal(size=(T, 4)).astype(np.float32)
        key = obs[:, 0] > 0
    if act_spec.kind == "discrete":
        act = np.where(key, 2, 0)
    elif act_spec.kind == "multi_discrete":
        act = np.stack([np.where(key, 2, 0), np.where(key, 3, 1)], axis=1)
    else:
        act = np.stack([np.where(key, 0.9, -0.9), np.where(key, -0.5, 0.5)], axis=1).astype(
            np.float32
        )
    return tk.tokenize_window(
        obs_spec, act_spec, obs, act, rng.normal(size=T), np.zeros(T), np.zeros(T)
    )


def mixed_batch(rng, T=16):
    specs = [(DISC_OBS, DISC_ACT), (DISC_OBS, CONT_ACT), (DISC_OBS, MD_ACT), (IMG_OBS, DISC_ACT)]
    return tk.collate([synthetic_window(o, a, T, rng) for o, a in specs for _ in range(2)])


def test_presets_parameter_counts_match_their_names():
    targets = {"ldm-32m": 32e6, "ldm-70m": 70e6, "ldm-308m": 308e6, "ldm-736m": 736e6}
    for name, target in targets.items():
        with torch.device("meta"):
            n = LDMPolicy(PRESETS[name]()).num_params()
        assert abs(n - target) / target < 0.10, (name, n)
    with torch.device("meta"):
        assert 1e6 <= LDMPolicy(PRESETS["ldm-tiny"]()).num_params() <= 3e6
    assert PRESETS["ldm-308m"]().layers == 12 and PRESETS["ldm-308m"]().context == 2048


@pytest.mark.parametrize("encoder", ["smooth", "paper"])
def test_loss_goes_down_on_mixed_modalities(encoder):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = preset("ldm-tiny", obs_encoder=encoder, prev_action_dropout=0.2, bin_jitter=1)
    model, untrained = LDMPolicy(cfg), LDMPolicy(cfg).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss, metrics = model.loss(mixed_batch(rng).to())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    # the reported accuracy is the share of steps whose every valid dim is argmax-right
    model.eval()
    batch = mixed_batch(rng).to()
    _, metrics = model.loss(batch)
    logits = model(batch)
    valid = batch.act_n[:, None, :] > 0  # (B, 1, 28)
    right = (logits.argmax(-1) == batch.targets.long()) | ~valid
    expected = right.all(-1)[batch.loss_mask].float().mean()
    assert float(metrics["accuracy"]) == pytest.approx(float(expected), abs=1e-6)
    assert float(metrics["accuracy"]) > float(untrained.loss(batch)[1]["accuracy"]) + 0.15


def test_masked_logits_forbid_invalid_bins_and_dims():
    model = LDMPolicy(preset("ldm-tiny")).eval()
    batch = mixed_batch(np.random.default_rng(1), T=4).to()
    logits = model(batch)
    assert logits.shape == (8, 4, 28, 1024)
    assert (logits[0, :, 0, 3:] < -1e8).all() and (logits[0, :, 1:] < -1e8).all()
    # multi_discrete nvec (3, 4): bins beyond each dim's count are masked, the others not
    assert (logits[4, :, 0, 3:] < -1e8).all() and (logits[4, :, 1, 4:] < -1e8).all()
    assert (logits[4, :, 0, :3] > -1e8).all() and (logits[4, :, 1, :4] > -1e8).all()
    assert (logits[4, :, 2:] < -1e8).all()
    assert (logits[4, :, 0].argmax(-1) < 3).all() and (logits[4, :, 1].argmax(-1) < 4).all()


def test_kv_cached_acting_equals_full_recompute():
    torch.manual_seed(0)
    model = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    rng = np.random.default_rng(0)
    # env 3 shares env 0's spaces: the session tokenizes them together and must keep the order
    specs = [(DISC_OBS, DISC_ACT), (DISC_OBS, CONT_ACT), (IMG_OBS, MD_ACT), (DISC_OBS, DISC_ACT)]
    session = model.start_session([o for o, _ in specs], [a for _, a in specs])
    history = {i: {"obs": [], "act": [], "rew": [], "term": []} for i in range(4)}
    for t in range(12):
        obs = [
            rng.normal(size=4).astype(np.float32),
            rng.normal(size=4).astype(np.float32),
            rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
            rng.normal(size=4).astype(np.float32),
        ]
        actions = session.act(obs)
        cached = session._step_logits_last
        rewards, term = rng.normal(size=4), np.array([t == 5, False, t == 7, t == 2])
        session.record(rewards, term, np.zeros(4, bool))
        for i in range(4):
            h = history[i]
            h["obs"].append(obs[i])
            h["act"].append(actions[i])
            h["rew"].append(rewards[i])
            h["term"].append(term[i])
        if t in (3, 11):
            for i, (o, a) in enumerate(specs):
                h = history[i]
                w = tk.tokenize_window(
                    o,
                    a,
                    np.stack(h["obs"]),
                    np.stack(h["act"]),
                    np.array(h["rew"]),
                    np.array(h["term"]),
                    np.zeros(t + 1),
                )
                full = model(tk.collate([w]).to())[0, -1]
                d = cached.shape[1]  # the session computes only its widest action dims
                torch.testing.assert_close(cached[i], full[:d], atol=1e-4, rtol=1e-4)
                assert (full[d:] < -1e8).all()


def test_a_session_that_keeps_some_envs_acts_as_if_it_had_only_those():
    torch.manual_seed(0)
    model = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    rng = np.random.default_rng(1)
    specs = [(DISC_OBS, DISC_ACT), (DISC_OBS, CONT_ACT), (IMG_OBS, MD_ACT)]
    whole = model.start_session([o for o, _ in specs], [a for _, a in specs])
    kept = [2, 0]  # a new order too
    alone = model.start_session([specs[i][0] for i in kept], [specs[i][1] for i in kept])

    def observations():
        return [
            rng.normal(size=4).astype(np.float32),
            rng.normal(size=4).astype(np.float32),
            rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
        ]

    for t in range(10):
        if t == 4:
            with pytest.raises(ModelError, match="indices"):
                whole.keep([3])
            whole.keep(kept)
        obs = observations()
        if t < 4:
            whole_actions = whole.act(obs)
            alone_actions = alone.act([obs[i] for i in kept])
            whole_logits = whole._step_logits_last[kept]
        else:
            whole_actions = [None] * 3
            for i, a in zip(kept, whole.act([obs[i] for i in kept])):
                whole_actions[i] = a
            alone_actions = alone.act([obs[i] for i in kept])
            whole_logits = whole._step_logits_last
        torch.testing.assert_close(whole_logits, alone._step_logits_last, atol=1e-4, rtol=1e-4)
        for i, a in zip(kept, alone_actions):
            np.testing.assert_array_equal(whole_actions[i], a)
        rewards, term = rng.normal(size=3), np.array([t == 2, False, t == 6])
        trunc = np.zeros(3, bool)
        if t < 4:
            whole.record(rewards, term, trunc)
        else:
            whole.record(rewards[kept], term[kept], trunc[kept])
        alone.record(rewards[kept], term[kept], trunc[kept])
    assert whole.num_envs == 2 and whole.cache is not None


def test_session_slides_past_the_context_and_resets():
    model = LDMPolicy(preset("ldm-tiny", context=8)).eval()
    session = model.start_session([DISC_OBS] * 2, [CONT_ACT] * 2)
    for _ in range(30):
        acts = session.act([np.zeros(4, np.float32)] * 2)
        assert all(np.all(np.abs(a) <= 1.0) for a in acts)
        session.record(np.zeros(2), np.zeros(2, bool), np.zeros(2, bool))
    assert len(session._embeds) <= 8
    session.reset([1])
    obs = [np.full(4, 0.3, np.float32)] * 2
    session.act(obs)
    # a reset env acts as a fresh session would; the other one keeps its history
    fresh = model.start_session([DISC_OBS], [CONT_ACT])
    fresh.act(obs[:1])
    kept, reset = session._step_logits_last
    torch.testing.assert_close(reset, fresh._step_logits_last[0], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(kept, reset, atol=1e-3)


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = LDMPolicy(preset("ldm-tiny")).eval()
    batch = mixed_batch(np.random.default_rng(2), T=4).to()
    model.save_pretrained(tmp_path / "ck")
    loaded = LDMPolicy.from_pretrained(tmp_path / "ck")
    torch.testing.assert_close(model(batch), loaded(batch), atol=0, rtol=0)
    weights = tmp_path / "ck" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="truncated or corrupted"):
        LDMPolicy.from_pretrained(tmp_path / "ck")
    cfg = tmp_path / "ck" / "config.json"
    cfg.write_text(cfg.read_text().replace('"format": 1', '"format": 99'))
    with pytest.raises(ModelError, match="format 99"):
        LDMPolicy.from_pretrained(tmp_path / "ck")


def test_median_decoding_reads_continuous_dims_at_the_cdf_half_and_categorical_by_argmax():
    from ldm.model.acting import DECODERS

    logits = torch.full((1, 2, 1024), -1e9)
    for b, p in ((100, 0.30), (500, 0.25), (900, 0.45)):  # three modes: argmax 900, median 500
        logits[0, :, b] = float(np.log(p))
    continuous = torch.tensor([[True, False]])
    assert DECODERS["argmax"](logits, continuous).tolist() == [[900, 900]]
    assert DECODERS["median"](logits, continuous).tolist() == [[500, 900]]

    torch.manual_seed(0)
    model = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    rng = np.random.default_rng(0)
    acts = [DISC_ACT, CONT_ACT, MD_ACT]
    session = model.start_session([DISC_OBS] * 3, acts)
    obs = [rng.normal(size=4).astype(np.float32) for _ in acts]
    actions = session.act(obs, decoding="median")
    lg = session._step_logits_last
    median = (torch.softmax(lg.float(), -1).cumsum(-1) >= 0.5).int().argmax(-1)
    bins = session._pending_actions
    assert bins[1, :2].tolist() == median[1, :2].tolist()  # the continuous env's two dims
    assert bins[0, 0] == lg[0, 0].argmax() and bins[2, :2].tolist() == lg[2, :2].argmax(-1).tolist()
    np.testing.assert_allclose(actions[1], tk.decode_actions(CONT_ACT, bins[1]))
    session.record(np.zeros(3), np.zeros(3, bool), np.zeros(3, bool))
    with pytest.raises(ModelError, match="decoding 'mean' is not one of"):
        session.act(obs, decoding="mean")
