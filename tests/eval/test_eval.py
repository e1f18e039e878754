import json

import numpy as np
import pytest
import torch

from ldm.data import Store
from ldm.eval import EvalConfig, evaluate, write_report
from ldm.eval.report import compare
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import headline, normalised_score, summarise
from ldm.model import LDMPolicy, preset
from ldm.spaces import SpaceSpec

ENVS = ["classic-control/CartPole-v1", "classic-control/Pendulum-v1"]


def test_normalised_score_and_unscorable_anchors():
    assert normalised_score(500.0, 20.0, 500.0) == 100.0
    assert normalised_score(260.0, 20.0, 500.0) == 50.0
    assert normalised_score(10.0, 5.0, 5.0) is None  # no learning: not scorable, no division
    s = summarise(
        [
            EnvResult("a/A", "ok", normalised_score=90.0),
            EnvResult("a/B", "ok", normalised_score=120.0),
            EnvResult("a/C", "ok"),
            EnvResult("a/D", "failed"),
        ]
    )
    assert (s.scorable, s.at_80, s.at_100, s.failed) == (2, 2, 1, 1)
    assert "2 of 2 envs at >= 80%" in headline(s)


def _store_with_anchors(tmp_path):
    store = Store(tmp_path / "store")
    obs = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
    act = SpaceSpec("discrete", (), "int64", n=2)
    w = store.create_run(
        "classic-control/CartPole-v1", "classic-control", obs, act, 1, {"algorithm": "PPO"}
    )
    for r in [10.0, 20.0, 480.0, 500.0] * 5:
        w.append(np.zeros((1, 4)), np.zeros(1), np.array([r]), np.ones(1), np.zeros(1))
    rid = w.commit()
    store.update_meta(rid, {"curation": {"verdict": "pass"}})
    return store, rid


def test_batched_protocol_one_model_call_per_step_and_report(tmp_path):
    store, rid = _store_with_anchors(tmp_path)
    torch.manual_seed(0)
    policy = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    cfg = EvalConfig(rollouts=2, episodes=2, max_steps=1000)
    res = evaluate(policy, ENVS, store, cfg, progress=False)
    assert res.model_calls == res.steps  # every live slot of both envs in one call per step
    cart = res.env(ENVS[0])
    assert [len(r) for r in cart.returns] == [2, 2] and cart.episodes == 4
    assert len(set(cart.seeds)) == 2 and cart.reference_run == rid
    assert cart.first10 == 15.0 and cart.last10 == 490.0
    assert cart.normalised_score == pytest.approx(100 * (cart.mean_return - 15) / 475)
    pend = res.env(ENVS[1])
    assert pend.normalised_score is None and "no curated reference" in pend.note
    # beside it the expert-normalised score: random measured by the protocol, expert the
    # file's (CartPole's optimum, 500)
    assert cart.expert_score == 500.0 and 8 < cart.random_score < 60
    assert cart.expert_normalised_score == pytest.approx(
        (cart.mean_return - cart.random_score) / (500.0 - cart.random_score)
    )
    assert pend.expert_normalised_score is not None  # no reference, but a published expert
    assert res.aggregate("ldm", "reference").envs == 1
    assert res.aggregate("ldm", "expert").envs == 2
    paths = write_report(res, tmp_path / "report")
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    html = paths["html"].read_text()
    assert (
        "data:image/png;base64," in html
        and "classic-control/CartPole-v1" in html
        and "Per library" in html
    )
    saved = json.loads(paths["results"].read_text())
    assert saved["summary"]["scorable"] == 1
    # the file is the record's JSON form, and reads back as the same record
    assert EvalResult.load(paths["results"]) == res and saved == res.to_dict()
    rows = compare(EvalResult.load(tmp_path / "report"), res)
    assert rows[0]["delta"] == 0.0


def test_scorable_only_lists_the_envs_nothing_could_score_and_does_not_play_them(tmp_path):
    # the wide run's evaluation played envs whose every job failed (no episode end within the
    # run) to the max_steps guard, and 75 envs without a curated reference or an expert
    # score, all for no score: with scorable_only they are listed with why
    store, _ = _store_with_anchors(tmp_path)
    (store.path / "refgen").mkdir(exist_ok=True)
    key = f"reference:sac-4env:{ENVS[1]}:0:30000"
    error = "no episode ended within the run's 30000 transitions"
    (store.path / "refgen" / "jobs.json").write_text(
        json.dumps({key: {"status": "failed", "error": error, "traceback": None}})
    )
    failed = {}
    for env_id, dim in (("classic-control/Acrobot-v1", 6), ("classic-control/MountainCar-v0", 2)):
        o = SpaceSpec("continuous", (dim,), low=(-30.0,) * dim, high=(30.0,) * dim)
        w = store.create_run(env_id, "classic-control", o, SpaceSpec("discrete", (), "int64", n=3),
                             1, {"algorithm": "PPO"})  # fmt: skip
        for t in range(20):  # episodes of 2 steps: the protocol's limit is 6
            w.append(np.zeros((1, dim)), np.zeros(1), np.array([-1.0]), np.zeros(1),
                     np.array([t % 2 == 1]))  # fmt: skip
        failed[env_id] = w.commit()
        store.update_meta(failed[env_id], {"curation": {"verdict": "fail", "reasons": ["p=0.4"]}})
    envs = [*ENVS, *failed]
    policy = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    cfg = EvalConfig(rollouts=1, episodes=1)
    res = evaluate(policy, envs, store, cfg, progress=False, scorable_only=True)
    pend = res.env(ENVS[1])
    assert pend.status == "failed" and pend.episodes == 0 and pend.returns == ()
    assert "not played" in pend.error and error in pend.error and "with no run" in pend.error
    car = res.env("classic-control/MountainCar-v0")  # no reference, no expert: no score
    assert car.episodes == 0 and "nothing to score" in car.error and "p=0.4" in car.error
    acro = res.env("classic-control/Acrobot-v1")  # no reference, but a published expert
    assert acro.episodes == 1 and acro.step_limit == 6 and acro.expert_normalised_score is not None
    assert res.env(ENVS[0]).episodes == 1 and res.summary.failed == 2
    assert [r.env_id for r in res.envs] == sorted(envs)  # in order, the unplayed among them


def test_same_seeds_reproduce_the_same_returns(tmp_path):
    store, _ = _store_with_anchors(tmp_path)
    policy = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    cfg = EvalConfig(rollouts=1, episodes=2)
    a = evaluate(policy, ENVS[:1], store, cfg, progress=False).envs[0].returns
    b = evaluate(policy, ENVS[:1], store, cfg, progress=False).envs[0].returns
    assert a == b


def test_an_env_outside_the_models_limits_fails_alone(tmp_path):
    store, _ = _store_with_anchors(tmp_path)
    policy = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    res = evaluate(
        policy,
        ["mujoco/Humanoid-v5", ENVS[0]],
        store,
        EvalConfig(rollouts=1, episodes=1),
        progress=False,
    )
    bad = res.env("mujoco/Humanoid-v5")
    assert bad.status == "failed" and "Humanoid" in bad.error
    assert res.env(ENVS[0]).episodes == 1


def test_references_are_evaluated_only_where_an_env_has_one(tmp_path):
    # the suite's references' evaluation crashed on the first env without a curated reference
    import gymnasium as gym
    from stable_baselines3 import PPO

    store, rid = _store_with_anchors(tmp_path)
    PPO("MlpPolicy", gym.make("CartPole-v1"), seed=0).save(str(store.path / "policies" / "p"))
    store.update_meta(rid, {"policy_file": "policies/p.zip"})
    res = evaluate(None, ENVS, store, EvalConfig(rollouts=1, episodes=1), progress=False)
    assert [e.env_id for e in res.envs] == [ENVS[0]]  # Pendulum has nothing to act with
    assert res.policy == "references" and res.env(ENVS[0]).mean_return is not None


@pytest.mark.parametrize(
    ("env_id", "says"),
    [
        # catalogued, but the store has no run of it: no anchors to score against
        ("classic-control/Pendulum-v1", ["has no run of it", "classic-control/CartPole-v1"]),
        ("classic-control/CartPol-v1", ["unknown env id", "classic-control/CartPole-v1"]),
    ],
)
def test_cli_eval_of_an_env_it_cannot_score_is_an_error(tmp_path, capsys, env_id, says):
    from ldm.cli import main

    store, _ = _store_with_anchors(tmp_path)
    ck = LDMPolicy(preset("ldm-tiny", context=32)).save_pretrained(tmp_path / "ck")
    out = tmp_path / "eval"
    argv = ["eval", str(ck), "--store", str(store.path), "--envs", env_id, "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ldm eval: error: --envs {env_id}: ")
    assert all(s in err for s in says), err
    assert not out.exists()


def test_the_start_up_reads_the_manifest_once_for_every_env(tmp_path, monkeypatch):
    # once per env, 1,000 envs of a 10,000-run store read the 10,000-run manifest 1,000 times
    from ldm.eval.evaluate import prepare

    store, rid = _store_with_anchors(tmp_path)
    calls, runs = [], Store.runs
    monkeypatch.setattr(Store, "runs", lambda s, *a, **k: (calls.append(1), runs(s, *a, **k))[1])
    plan = prepare(store, ENVS * 3, EvalConfig(rollouts=1))
    assert calls == [1]
    assert plan.refs[ENVS[0]].run_id == rid and plan.refs[ENVS[1]] is None
    assert [r.env_id for r in plan.runs] == ENVS * 3 and plan.runs[0].step_limit is not None


def test_envs_played_in_groups_give_the_same_results_and_a_rerun_plays_only_unkept_groups(
    tmp_path, monkeypatch
):
    import importlib

    from ldm.errors import EvalError
    from ldm.eval.groups import Partial

    store, _ = _store_with_anchors(tmp_path)
    torch.manual_seed(0)
    policy = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    envs = [*ENVS, "toy-text/FrozenLake-v1"]
    together = evaluate(policy, envs, store, EvalConfig(rollouts=1, episodes=2), progress=False)
    cfg = EvalConfig(rollouts=1, episodes=2, envs_at_once=2)
    played = []
    ev = importlib.import_module("ldm.eval.evaluate")  # the package's `evaluate` is the function
    real = ev._play_group
    monkeypatch.setattr(ev, "_play_group", lambda p, runs, *a: played.append(
        [r.env_id for r in runs]) or real(p, runs, *a))  # fmt: skip
    partial = Partial(tmp_path / "partial", "ckpt-1")
    grouped = evaluate(policy, envs, store, cfg, progress=False, partial=partial)
    assert played == [envs[:2], envs[2:]]  # two groups, at most 2 envs at once
    assert [e.returns for e in grouped.envs] == [e.returns for e in together.envs]
    assert len(list(partial.path.glob("group-*.json"))) == 2
    # a rerun (a kill after the first group: its file alone kept) plays the second group only
    (kept, lost) = sorted(partial.path.glob("group-*.json"), key=lambda f: f.stat().st_mtime)
    lost.unlink()
    played.clear()
    again = evaluate(policy, envs, store, cfg, progress=False, partial=partial)
    assert played == [envs[2:]] and again.envs == grouped.envs
    # another model (key) or config plays everything again
    played.clear()
    evaluate(policy, envs, store, cfg, progress=False, partial=Partial(partial.path, "ckpt-2"))
    assert played == [envs[:2], envs[2:]]
    with pytest.raises(EvalError, match="envs_at_once must be >= 0"):
        EvalConfig(envs_at_once=-1)
