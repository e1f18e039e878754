"""The protocol's per-episode step limit (from the reference episodes, reported as cut), the
references beside the LDM, and the reason an env has no reference."""

import json

import numpy as np
import pytest
import torch

from ldm.data import Store
from ldm.envs import make
from ldm.eval import EvalConfig, evaluate
from ldm.eval.evaluate import why_no_reference
from ldm.eval.report import REFERENCE_FLOOR, attach_references, library_table
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise
from ldm.model import LDMPolicy, preset
from ldm.spaces import SpaceSpec

PEND = "classic-control/Pendulum-v1"


def test_a_declared_step_limit_truncates_and_marks_the_cut():
    env = make(PEND, ldm_step_limit=5)  # Pendulum's own limit is 200
    env.reset(seed=0)
    for t in range(1, 6):
        _, _, term, trunc, info = env.step(np.zeros(1, np.float32))
        assert not term and trunc == (t == 5)
    assert info.get("ldm_cut") is True
    env.reset(seed=1)
    assert not env.step(np.zeros(1, np.float32))[3]  # the count starts again
    env.close()


def test_a_run_cut_at_the_default_limit_sets_the_evaluations_limit():
    # the reference played its episodes under the hub's default limit (its meta says so): the
    # LDM plays under the same, not 3x the longest (cut) episode
    from types import SimpleNamespace

    from ldm.data.meta import Episode
    from ldm.eval.evaluate import episode_step_limit

    eps = [Episode(0, 1.0, 1000, 999)]
    cut = SimpleNamespace(extra={"step_limit": 1000}, episodes=eps)
    plain = SimpleNamespace(extra={}, episodes=eps)
    cfg = EvalConfig(episode_limit_factor=3.0)
    assert episode_step_limit("toy-text/CliffWalking-v1", [cut], cfg) == 1000
    assert episode_step_limit(PEND, [cut], EvalConfig(episode_limit_factor=0)) == 1000
    assert episode_step_limit(PEND, [plain], cfg) == 3000  # without it: 3x the longest


def _pendulum_reference(store, length, verdict="pass"):
    obs = SpaceSpec("continuous", (3,), low=(-8.0,) * 3, high=(8.0,) * 3)
    act = SpaceSpec("continuous", (1,), low=(-2.0,), high=(2.0,))
    w = store.create_run(
        PEND, "classic-control", obs, act, 1, {"algorithm": "SAC", "candidate": "sac", "seed": 0}
    )
    for ep in range(20):
        for t in range(length):
            r = -10.0 + ep * 0.4
            w.append(np.zeros((1, 3)), np.zeros((1, 1)), np.array([r]), np.zeros(1),
                     np.array([t == length - 1]))  # fmt: skip
    rid = w.commit()
    store.update_meta(
        rid,
        {
            "curation": {
                "verdict": verdict,
                "reasons": []
                if verdict == "pass"
                else ["no significant improvement (p=0.3 >= alpha=0.05)"],
            }
        },
    )
    return rid


def test_protocol_cuts_episodes_at_factor_x_the_reference_episodes_and_says_so(tmp_path):
    store = Store(tmp_path / "s")
    _pendulum_reference(store, length=10)
    torch.manual_seed(0)
    policy = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    res = evaluate(
        policy,
        [PEND],
        store,
        EvalConfig(rollouts=2, episodes=3, episode_limit_factor=3),
        progress=False,
    )
    e = res.envs[0]
    assert e.step_limit == 30 and e.cut_episodes == 6 and e.episodes == 6
    assert res.steps == 3 * 30  # 3 episodes of 30 steps, both rollouts together
    assert e.normalised_score is not None
    off = evaluate(
        policy,
        [PEND],
        store,
        EvalConfig(rollouts=1, episodes=1, episode_limit_factor=0),
        progress=False,
    )
    assert off.envs[0].step_limit is None and off.steps == 200  # the env's own limit


def test_an_env_without_a_curated_reference_is_cut_by_its_failed_runs_episodes(tmp_path):
    # a failed run still says how long the env's episodes are: the LDM's episodes there are
    # cut at 3 x 10 steps, not played to the env's own limit (an endless env held its slot to
    # the max_steps guard in the wide run)
    store = Store(tmp_path / "s")
    _pendulum_reference(store, length=10, verdict="fail")
    torch.manual_seed(0)
    policy = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    cfg = EvalConfig(rollouts=1, episodes=2, episode_limit_factor=3)
    e = evaluate(policy, [PEND], store, cfg, progress=False).envs[0]
    assert e.step_limit == 30 and e.cut_episodes == 2 and e.normalised_score is None
    assert "no curated reference" in e.note


def test_why_an_env_has_no_reference(tmp_path):
    store = Store(tmp_path / "s")
    assert "not planned or not run yet" in why_no_reference(store, PEND)
    _pendulum_reference(store, length=5, verdict="fail")
    why = why_no_reference(store, PEND)
    assert "failed curation" in why and "p=0.3" in why and "sac seed 0" in why


def test_why_an_env_whose_jobs_failed_has_no_reference_follows_the_jobs_file(tmp_path):
    # the jobs file is read once per version (a wide run asks for each unplayed env), and
    # read again when refgen rewrites it
    store = Store(tmp_path / "s")
    jobs = store.path / "refgen" / "jobs.json"
    jobs.parent.mkdir(parents=True)

    def failed(error: str) -> dict:
        return {"status": "failed", "error": error, "traceback": ""}

    jobs.write_text(json.dumps({
        f"rank:ppo-8env:{PEND}:0:1000:x": failed("RefGenError: no episode finished\nmore"),
        "rank:ppo-8env:classic-control/CartPole-v1:0:1000:x": failed("WorkerError: other"),
    }))  # fmt: skip
    why = why_no_reference(store, PEND)
    assert (
        why == "no curated reference: its jobs failed (ppo-8env: RefGenError: no episode finished)"
    )
    jobs.write_text(json.dumps({f"train:sac-4env:{PEND}:0:1000:x": failed("WorkerError: crashed")}))
    assert why_no_reference(store, PEND).endswith("(sac-4env: WorkerError: crashed)")


def test_references_beside_the_ldm_and_the_checked_summary():
    def result(policy, scores, **fields):
        envs = tuple(EnvResult(f"lib{i % 2}/E{i}", "ok", normalised_score=s, **fields)
                     for i, s in enumerate(scores))  # fmt: skip
        return EvalResult(policy, "s", EvalConfig(), envs, summarise(envs))

    ldm = result("ldm", [90.0, 50.0, 120.0, 85.0], first10=0.0)
    refs = result("references", [101.0, 98.0, 40.0, None], cut_episodes=0)
    ldm = attach_references(ldm, refs)
    assert [e.reference_score for e in ldm.envs] == [101.0, 98.0, 40.0, None]
    assert [e.reference_cut_episodes for e in ldm.envs] == [0, 0, 0, 0]
    checked = ldm.summary_checked  # only E0 and E1 have a reference >= the floor
    assert REFERENCE_FLOOR == 80.0 and checked.scorable == 2 and checked.at_80 == 1
    assert ldm.summary.scorable == 4 and ldm.summary.at_80 == 3
    assert ldm.references_summary == refs.summary
    rows = {r["library"]: r for r in library_table(ldm)}
    assert rows["lib0"]["references"] == 2 and rows["lib0"]["median_score"] == pytest.approx(105)
    assert rows["lib1"]["share_at_80"] == pytest.approx(0.5)
