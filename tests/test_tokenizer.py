import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ldm import tokenizer as tk
from ldm.errors import SpaceError
from ldm.spaces import N_BINS, SpaceSpec

BOX = SpaceSpec("continuous", (2,), low=(-2.0, 0.0), high=(2.0, 10.0))
FREE = SpaceSpec("continuous", (1,), low=(float("-inf"),), high=(float("inf"),))
DISC = SpaceSpec("discrete", (), "int64", n=3, start=1)


@given(st.floats(-2.0, 2.0), st.floats(0.0, 10.0))
def test_bounded_action_round_trip_within_one_bin(a, b):
    act = np.array([[a, b]])
    back = tk.decode_actions(BOX, tk.encode_actions(BOX, act))
    width = np.array([4.0, 10.0]) / N_BINS
    assert np.all(np.abs(back - act) <= width + 1e-6)
    assert np.all(back >= [-2.0, 0.0]) and np.all(back <= [2.0, 10.0])


@given(st.floats(-200.0, 200.0))
def test_mu_law_round_trip_within_one_bin(x):
    y = tk.mu_law(np.array([x]))
    b = tk.uniform_bins(y)
    back = tk.inv_mu_law(tk.bin_centres(b))
    lo, hi = (
        tk.inv_mu_law(tk.bin_centres(b) - 1 / N_BINS),
        tk.inv_mu_law(tk.bin_centres(b) + 1 / N_BINS),
    )
    assert lo[0] - 1e-9 <= x <= hi[0] + 1e-9 and lo[0] <= back[0] <= hi[0]


@given(st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=20))
def test_bins_are_monotone_in_value(xs):
    xs = np.sort(np.array(xs))
    assert np.all(np.diff(tk.uniform_bins(tk.mu_law(xs)).astype(int)) >= 0)


def test_unbounded_action_uses_mu_law():
    bins = tk.encode_actions(FREE, np.array([[-1e6], [0.0], [3.0]]))
    assert bins[0, 0] == 0 and bins[1, 0] == N_BINS // 2
    assert abs(tk.decode_actions(FREE, bins)[2, 0] - 3.0) < 0.1


def test_non_finite_is_an_error_not_a_bin():
    with pytest.raises(SpaceError, match="non-finite"):
        tk.encode_observations(BOX, np.array([[np.nan, 1.0]]))


def test_discrete_start_offset_round_trips():
    bins = tk.encode_actions(DISC, np.array([1, 3]))
    assert bins[:, 0].tolist() == [0, 2]
    assert tk.decode_actions(DISC, bins).tolist() == [1, 3]
    with pytest.raises(SpaceError, match="outside"):
        tk.encode_actions(DISC, np.array([4]))


def test_window_alignment_and_padding():
    obs = np.arange(8, dtype=np.float32).reshape(4, 2)
    acts = np.array([0, 1, 2, 1]) + 1
    w = tk.tokenize_window(
        BOX,
        DISC,
        obs,
        acts,
        np.array([1.0, 0, 0, 5]),
        np.array([0, 1, 0, 0]),
        np.zeros(4),
        pad_to=6,
    )
    assert w.loss_mask.tolist() == [False, False, True, True, True, True]
    assert w.prev_done[2:].tolist() == [
        tk.DONE_START,
        tk.DONE_NONE,
        tk.DONE_TERMINATED,
        tk.DONE_NONE,
    ]
    assert w.prev_actions[2:, 0].tolist() == [0, 0, 1, 2]
    assert w.targets[2:, 0].tolist() == [0, 1, 2, 1]
    assert w.act_n[:2].tolist() == [3, 0]


def test_images_resized_and_collated_with_vector_windows():
    img_spec = SpaceSpec("image", (84, 84, 1), "uint8")
    frames = np.random.default_rng(0).integers(0, 255, (3, 84, 84, 1), dtype=np.uint8)
    wi = tk.tokenize_window(
        img_spec, DISC, frames, np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3)
    )
    wv = tk.tokenize_window(
        BOX, DISC, np.zeros((3, 2)), np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3)
    )
    batch = tk.collate([wi, wv])
    assert batch.image.shape == (2, 3, 64, 64, 3)
    assert batch.has_image.tolist() == [True, False] and batch.image[1].max() == 0


def test_batch_record_fields_select_and_torch():
    wv = tk.tokenize_window(
        BOX, DISC, np.zeros((3, 2)), np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3)
    )
    wd = tk.tokenize_window(
        BOX, DISC, np.ones((2, 2)), np.full(2, 3), np.ones(2), np.ones(2), np.zeros(2), pad_to=3
    )
    batch = tk.collate([wv._replace(env_index=np.asarray(0)), wd._replace(env_index=np.asarray(1))])
    assert batch.image is None and batch.env_index.tolist() == [0, 1]
    assert batch.obs_bins.shape == (2, 3, 128) and batch.act_n.shape == (2, 28)
    one = batch.select(batch.env_index == 1)
    assert one.loss_mask.tolist() == [[False, True, True]] and one.targets[0, 1:, 0].tolist() == [
        2,
        2,
    ]
    t = batch.to("cpu")
    assert t.prev_done.dtype == torch.int8 and t.image is None
    assert t.prev_done[1].tolist() == [0, tk.DONE_START, tk.DONE_TERMINATED]
    with pytest.raises(AttributeError):
        batch.obs_bin  # noqa: B018 (a misspelt field fails where it is read)
