import re
from typing import get_args, get_type_hints

import numpy as np
import pytest

from ldm.data import WindowLoader, WindowSampler
from ldm.data.sampler import WEIGHTINGS
from ldm.errors import StoreError

from .conftest import BOXA, DISC, IMG, MD, VEC, record


@pytest.fixture
def mixed(store):
    record(store, "a/Vec-v0", VEC, DISC, steps=400, streams=2, seed=1)
    record(store, "a/Box-v0", VEC, BOXA, steps=60, streams=1, seed=2)
    record(store, "b/Img-v0", IMG, DISC, steps=50, streams=1, seed=3)
    record(store, "b/Md-v0", VEC, MD, steps=80, streams=1, seed=4)
    record(store, "b/Uncurated-v0", VEC, DISC, steps=80, streams=1, verdict="fail")
    return store


def test_batches_are_deterministic_and_model_ready(mixed):
    s = WindowSampler(mixed, window_len=32)
    a, b = s.batch(8, seed=3, rank=0, index=5), s.batch(8, seed=3, rank=0, index=5)
    for field, x, y in zip(a._fields, a, b):
        assert (x is None) == (y is None), field
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=field)
    assert a.obs_bins.shape == (8, 32, 128) and a.targets.shape == (8, 32, 28)
    assert (a.image is not None) == bool(a.has_image.any())
    img = WindowSampler(mixed, window_len=32, envs=["b/Img-v0", "a/Vec-v0"], weighting="env").batch(
        8, 0, 0, 0
    )
    assert img.image.shape == (8, 32, 64, 64, 3) and img.has_image.any()
    c = s.batch(8, seed=3, rank=1, index=5)
    assert not np.array_equal(a.obs_values, c.obs_values)  # ranks draw disjoint streams
    assert "b/Uncurated-v0" not in s.env_ids  # only curated runs


def test_window_near_stream_start_is_left_padded(mixed):
    s = WindowSampler(mixed, window_len=32, envs=["a/Vec-v0"])
    w = s.window(s.streams[0], end=10)
    assert w.loss_mask.tolist() == [False] * 22 + [True] * 10
    reader = s.readers[s.streams[0].run_id]
    np.testing.assert_array_equal(w.targets[22:, 0], reader.read(0, "ref_actions", 0, 10))


def test_env_weighting_balances_small_envs(mixed):
    counts = {}
    for weighting in ("uniform", "env"):
        s = WindowSampler(mixed, window_len=4, weighting=weighting)
        rng = np.random.default_rng(0)
        hits = [s.streams[rng.choice(len(s.streams), p=s.probs)].env_id for _ in range(4000)]
        counts[weighting] = hits.count("b/Img-v0") / len(hits)
    assert counts["uniform"] < 0.1 and 0.2 < counts["env"] < 0.3


def test_loader_resumes_exactly(mixed):
    full = WindowLoader(mixed, window_len=16, batch_size=4, seed=1, num_workers=0)
    batches = [next(full) for _ in range(5)]
    first = WindowLoader(mixed, window_len=16, batch_size=4, seed=1, num_workers=0)
    for _ in range(3):
        next(first)
    state = first.state_dict()
    resumed = WindowLoader(mixed, window_len=16, batch_size=4, seed=1, num_workers=2)
    resumed.load_state_dict(state)
    for expected in batches[3:]:
        got = next(resumed)
        assert got.obs_bins.dtype.is_floating_point is False
        np.testing.assert_array_equal(got.obs_bins.numpy(), expected.obs_bins.numpy())


def test_missing_reference_actions_and_empty_store_are_clear_errors(store):
    with pytest.raises(StoreError, match="no curated"):
        WindowSampler(store, 8)
    record(store, "a/Vec-v0", VEC, DISC, steps=20, streams=1, relabel=False)
    with pytest.raises(StoreError, match="ldm refgen relabel"):
        WindowSampler(store, 8)
    assert WindowSampler(store, 8, targets="reference_or_actions").env_ids == ["a/Vec-v0"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weighting": "envs"}, "weighting 'envs' is not one of ('uniform', 'env', 'library')"),
        ({"holdout": "test"}, "holdout 'test' is not one of ('none', 'train', 'val')"),
        ({"targets": "ref"}, "targets 'ref' is not one of ('reference', 'actions', "),
    ],
)
def test_unknown_choices_are_named_with_the_known_ones(mixed, kwargs, message):
    with pytest.raises(StoreError, match=re.escape(message)):
        WindowSampler(mixed, 8, **kwargs)


def test_the_training_configs_weighting_choices_are_the_samplers():
    """TrainConfig (which may not import the sampler) offers exactly the sampler's weightings."""
    from ldm.train.config import TrainConfig

    assert get_args(get_type_hints(TrainConfig)["weighting"]) == WEIGHTINGS


def test_sigterm_to_the_process_group_stops_a_loader_cleanly(mixed):
    """A scheduler stops a job with SIGTERM to all its processes: the loader's worker must not
    die first and turn the clean interrupt into torch's "DataLoader worker ... killed"."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    code = textwrap.dedent(
        f"""
        import sys
        from ldm.cli import _sigterm_as_interrupt
        from ldm.data import WindowLoader
        _sigterm_as_interrupt()
        loader = WindowLoader({str(mixed.path)!r}, window_len=16, batch_size=2, num_workers=1)
        try:
            next(loader)
            print("ready", flush=True)
            while True:
                next(loader)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # the worker is prefetching
        os.killpg(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:  # a run that hangs instead of stopping must not outlive the test
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130 and "interrupted" in out, err
    assert "DataLoader worker" not in err


def test_the_sampler_draws_as_numpy_choice_did_and_keeps_no_episodes(mixed):
    # the streams' CDF is computed once (rng.choice made it per window, over every stream):
    # the same draws, so a resumed run's batches are the ones an older version drew
    s = WindowSampler(mixed, window_len=4, weighting="env")
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(200):
        ref = s.streams[a.choice(len(s.streams), p=s.probs)]
        assert s.sample(b).env_index == s.env_ids.index(ref.env_id)
        a.integers(1, ref.length + 1)  # the window's end, drawn by sample() as well
    # one reader per run is kept for the whole training: without its episodes' metadata
    assert all(r.meta.episodes == () == r.meta.episode_returns for r in s.readers.values())
