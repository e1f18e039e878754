"""The 1-nearest-neighbour retrieval baseline over an env's first K reference episodes."""

import numpy as np
import pytest

from ldm.cli import main as ldm_main
from ldm.data import Store
from ldm.errors import EvalError
from ldm.eval import EvalConfig, evaluate
from ldm.eval.results import EvalResult
from ldm.eval.retrieval import NearestNeighbourPolicy, retrieval_policy
from ldm.spaces import SpaceSpec
from tests.data.conftest import DISC, VEC, record

CARTPOLE = "classic-control/CartPole-v1"


def test_acts_as_the_reference_did_at_the_nearest_observation():
    obs = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    policy = NearestNeighbourPolicy(obs, np.array([7, 8, 9]))
    actions, _ = policy.predict(np.array([[0.9, 1.2], [4.0, 4.0], [-1.0, 0.0]]))
    assert actions.tolist() == [8, 9, 7]
    assert int(policy.predict(np.array([0.2, 0.1]))[0]) == 7  # one observation: one action
    with pytest.raises(EvalError, match="at least one"):
        NearestNeighbourPolicy(obs[:0], np.array([]))


def test_retrieves_only_from_the_first_k_episodes_of_the_training_streams(tmp_path):
    store = Store(tmp_path / "store")
    rid = record(store, "a/Vec-v0", VEC, DISC, steps=100, streams=2, seed=0)
    reader = store.open_run(rid)
    policy = retrieval_policy(store, "a/Vec-v0", 2)  # episodes end every 20 steps
    assert len(policy.obs) == 40  # stream 0's first 40 transitions; stream 1 is held out
    stored = reader.read(0, "obs", 0, 40)
    actions, _ = policy.predict(stored)
    assert np.array_equal(actions, reader.read(0, "ref_actions", 0, 40))
    later = reader.read(0, "obs", 40, 41)  # never stored: its nearest is another transition
    assert not np.allclose(policy.obs[policy.nearest(later)], later.reshape(1, -1))
    with pytest.raises(EvalError, match="no curated run of a/Nope-v0"):
        retrieval_policy(store, "a/Nope-v0", 2)


def test_the_protocol_plays_the_baseline_in_a_real_env(tmp_path):
    store = Store(tmp_path / "store")
    obs = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
    record(store, CARTPOLE, obs, SpaceSpec("discrete", (), "int64", n=2), steps=100, streams=1)
    cfg = EvalConfig(rollouts=1, episodes=2, video=False, references=False)
    res = evaluate(
        None,
        [CARTPOLE],
        store,
        cfg,
        progress=False,
        per_env=lambda e: retrieval_policy(store, e, 3),
    )
    assert res.policy == "baseline"
    (env,) = res.envs
    assert env.status == "ok" and env.episodes == 2 and env.mean_return > 0
    out = tmp_path / "eval"
    argv = ["eval", "--store", str(store.path), "--retrieval", "3", "--envs", CARTPOLE]
    assert ldm_main([*argv, "--out", str(out), "--rollouts", "1", "--episodes", "2"]) == 0
    again = EvalResult.load(out / "results.json")
    assert again.policy == "baseline" and again.env(CARTPOLE).returns == env.returns
