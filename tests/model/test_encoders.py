"""The encoder's savings change nothing: embedding only the used dims, and encoding each
distinct frame once, give the full computation's tokens and gradients."""

import numpy as np
import pytest
import torch

from ldm.model import LDMPolicy, preset
from ldm.model import encoders as enc
from ldm.spaces import MAX_ACT_DIMS, MAX_OBS_DIMS
from tests.model.test_policy import mixed_batch


def _tokens_and_grads(model, batch):
    model.zero_grad()
    tokens = model.encoder(batch)
    (tokens * torch.linspace(-1, 1, tokens.numel()).view_as(tokens)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.encoder.named_parameters() if p.grad is not None}
    return tokens.detach(), grads


@pytest.mark.parametrize("encoder", ["smooth", "paper"])
def test_skipping_padded_dims_and_repeated_frames_gives_the_full_computation(encoder, monkeypatch):
    torch.manual_seed(0)
    model = LDMPolicy(preset("ldm-tiny", obs_encoder=encoder)).eval()
    batch = mixed_batch(np.random.default_rng(0)).to()
    # repeat frames, as a grid world does: every image window shows the same 3 frames
    frames = batch.image[batch.has_image.bool()]
    frames[:] = frames[:, torch.arange(frames.shape[1]) % 3][0]
    batch = batch._replace(image=batch.image.index_put((batch.has_image.bool(),), frames))
    assert enc.used_dims(batch.obs_dim_type) == 4 and enc.used_dims(batch.act_dim_type) == 2

    fast, fast_grads = _tokens_and_grads(model, batch)
    # the full computation: every dim embedded, every frame through the CNN
    full_dims = {MAX_OBS_DIMS: MAX_OBS_DIMS, MAX_ACT_DIMS: MAX_ACT_DIMS}
    monkeypatch.setattr(enc, "used_dims", lambda t: full_dims[t.shape[-1]])
    monkeypatch.setattr(enc, "distinct_frames", lambda images: (images, None))
    full, full_grads = _tokens_and_grads(model, batch)

    assert torch.allclose(fast, full, atol=1e-5, rtol=1e-4)
    assert fast_grads.keys() == full_grads.keys()
    for name, g in full_grads.items():
        assert torch.allclose(fast_grads[name], g, atol=1e-5, rtol=1e-4), name


def test_distinct_frames_finds_each_frame_once_in_order_of_appearance():
    rng = np.random.default_rng(1)
    pool = torch.as_tensor(rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8))
    order = torch.tensor([2, 0, 2, 2, 1, 0])
    unique, inverse = enc.distinct_frames(pool[order])
    assert torch.equal(unique, pool[torch.tensor([2, 0, 1])])
    assert inverse.tolist() == [0, 1, 0, 0, 2, 1]
    # frames that differ in one byte are different frames; all distinct: no gather
    other = pool[:1].clone()
    other[0, 63, 63, 2] ^= 1
    unique, inverse = enc.distinct_frames(torch.cat([pool[:1], other]))
    assert unique.shape[0] == 2 and inverse is None
