import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ldm.data import Store
from ldm.errors import RefGenError
from ldm.refgen.candidates import load_pool
from ldm.refgen.curate import curate_env, welch_greater
from ldm.spaces import SpaceSpec
from tests.procs import descendants, shm_semaphores

BOX = SpaceSpec("continuous", (3,), low=(-1.0,) * 3, high=(1.0,) * 3)
DISC = SpaceSpec("discrete", (), "int64", n=2)
IMG = SpaceSpec("image", (64, 64, 3), "uint8")


def test_welch_and_its_degenerate_cases():
    assert welch_greater([10, 11, 12, 11], [1, 2, 1, 2]).greater
    assert not welch_greater([1, 2, 1, 2], [10, 11, 12, 11]).greater
    r = welch_greater([5.0], [1.0, 2.0])
    assert not r.greater and "too few episodes" in r.reason
    r = welch_greater([500.0] * 5, [500.0] * 5)  # identical constants: scipy gives NaN
    assert not r.greater and r.p is None and "constant" in r.reason
    assert welch_greater([500.0] * 5, [20.0] * 5).greater


def test_compatibility_from_space_specs():
    pool = {c.name: c for c in load_pool()}
    assert pool["dqn"].compatible(BOX, DISC) == (True, "MlpPolicy")
    ok, why = pool["dqn"].compatible(BOX, BOX)
    assert not ok and "continuous" in why
    assert not pool["sac"].compatible(BOX, DISC)[0]
    assert pool["ppo"].compatible(IMG, DISC) == (True, "CnnPolicy")
    assert not pool["ppo-8env-gsde"].compatible(BOX, DISC)[0]
    # settings for one policy kind: pixels take the Atari-style PPO, vectors the many-epoch one
    assert pool["ppo-8env-cnn"].compatible(IMG, DISC) == (True, "CnnPolicy")
    ok, why = pool["ppo-8env-cnn"].compatible(BOX, DISC)
    assert not ok and "CnnPolicy" in why and "MlpPolicy" in why
    assert not pool["ppo-8env"].compatible(IMG, DISC)[0]
    assert pool["ppo-8env"].compatible(BOX, DISC) == (True, "MlpPolicy")
    assert {c.algo for c in pool.values()} == {
        "A2C",
        "ARS",
        "DDPG",
        "DQN",
        "PPO",
        "QRDQN",
        "SAC",
        "TD3",
        "TQC",
        "TRPO",
        "sbx.SAC",
        "sbx.TQC",
        "sbx.TD3",
        "sbx.CrossQ",
        "sbx.PPO",
        "sbx.DQN",
    }


def test_every_candidate_builds_with_its_constructor_kwargs_and_adam_is_fused():
    """Fused Adam where the policy keeps SB3's default optimizer; A2C keeps RMSprop, QR-DQN
    its own Adam, ARS has none, a configuration naming its own optimizer is left as written; every algorithm of
    the pool builds with what run_job passes it."""
    import gymnasium as gym
    import torch

    from ldm.refgen.candidates import Candidate

    pool = {c.name: c for c in load_pool()}
    envs = {"continuous": gym.make("Pendulum-v1"), "discrete": gym.make("CartPole-v1")}
    fused = {}
    for cand in {c.algo: c for c in pool.values() if c.n_envs == 1}.values():
        kinds = [k for k in envs if cand.compatible(BOX, BOX if k == "continuous" else DISC)[0]]
        kw = cand.constructor_kwargs()
        model = cand.algorithm_class()("MlpPolicy", envs[kinds[0]], device="cpu", **kw)
        # the policy's optimizer, or SAC/TD3/DDPG/TQC's one per actor and critic
        opts = [
            v
            for m in model.policy.modules()
            for v in vars(m).values()
            if isinstance(v, torch.optim.Optimizer)
        ]
        fused[cand.algo] = bool(opts) and all(o.defaults.get("fused") is True for o in opts)
        if cand.algo == "A2C":
            assert opts and all(isinstance(o, torch.optim.RMSprop) for o in opts)
    # sbx's algorithms train with optax: no torch optimizer, nothing added to their kwargs
    assert fused == {a: a not in ("A2C", "ARS", "QRDQN") and "sbx" not in a for a in fused}
    assert all(pool[n].constructor_kwargs() == pool[n].kwargs for n in pool if "sbx" in n)
    assert set(fused) == {c.algo for c in pool.values()}
    own = Candidate("x", "PPO", kwargs={"policy_kwargs": {"optimizer_kwargs": {"eps": 1e-5}}})
    assert own.constructor_kwargs() == own.kwargs
    # the candidate's own record is untouched (jobs.json and run metadata write it)
    assert "policy_kwargs" not in pool["ppo-8env"].kwargs


def test_bad_pool_entries_are_named(tmp_path):
    f = tmp_path / "pool.toml"
    f.write_text('[[candidate]]\nname = "x"\nalgo = "MAGIC"\n')
    with pytest.raises(RefGenError, match="MAGIC"):
        load_pool(f)
    with pytest.raises(RefGenError, match="unknown candidates"):
        load_pool(None, ["nope"])


def _fake_run(store, env_id, returns, relabelled=True, run_id=None):
    w = store.create_run(env_id, "lib", BOX, DISC, 1, {"algorithm": "PPO"}, run_id=run_id)
    for r in returns:
        w.append(np.zeros((1, 3)), np.zeros(1), np.array([r]), np.ones(1), np.zeros(1))
    rid = w.commit()
    store.update_meta(rid, {"relabelled": relabelled})
    return rid


def test_curation_marks_no_improvement_and_below_95_percent(tmp_path):
    store = Store(tmp_path / "s")
    good = _fake_run(store, "lib/E-v0", list(np.linspace(0, 100, 40)))
    flat = _fake_run(store, "lib/E-v0", [50.0, 52.0, 49.0, 51.0] * 10)
    worse = _fake_run(store, "lib/E-v0", list(np.linspace(0, 80, 40)))
    v = curate_env(store, "lib/E-v0")
    assert v[good].verdict == "pass"
    assert v[flat].verdict == "fail" and "no significant improvement" in v[flat].reasons[0]
    assert v[worse].verdict == "fail" and "below 95%" in v[worse].reasons[-1]
    assert store.runs()[flat].verdict == "fail"  # marked, not deleted
    assert store.open_run(good).meta.first10 < store.open_run(good).meta.last10


def test_curation_fails_a_run_whose_deterministic_check_plays_below_the_floor(tmp_path):
    """A run that learned (0 -> 100 while training) but whose deterministic policy plays like
    its first episodes fails at a floor of 50%; one that plays near its last episodes passes;
    a run recorded without a check is not judged on it; no floor, no check."""
    from ldm.refgen import RefGenConfig
    from ldm.refgen.stage import curate_env_references

    store = Store(tmp_path / "s")
    learned = list(np.linspace(0, 100, 40))
    plays = _fake_run(store, "lib/E-v0", learned)
    stalls = _fake_run(store, "lib/E-v0", learned)
    unchecked = _fake_run(store, "lib/E-v0", learned)
    store.update_meta(plays, {"check_returns": [95.0, 90.0, 99.0]})
    store.update_meta(stalls, {"check_returns": [2.0, 0.0, 4.0]})
    runs = {plays, stalls, unchecked}
    v = curate_env(store, "lib/E-v0", check_floor=50.0)
    assert v[plays].verdict == "pass" and v[unchecked].verdict == "pass"
    assert v[stalls].verdict == "fail"
    # first 10% of the run averages 3.85, last 10% 96.15: the check's mean 2 is -2% of that
    assert v[stalls].reasons == (
        "its deterministic policy scored -2% of its training improvement in 3 episodes "
        "(mean 2; floor 50%)",
    )
    assert store.runs()[stalls].verdict == "fail"
    assert curate_env(store, "lib/E-v0")[stalls].verdict == "pass"  # no floor given
    # the stage applies the config's floor only where its runs are checked
    checked = RefGenConfig(envs=["lib/E-v0"], check_episodes=3, check_floor=50.0)
    assert curate_env_references(store, "lib/E-v0", runs, checked)[stalls].verdict == "fail"
    off = RefGenConfig(envs=["lib/E-v0"], check_floor=50.0)
    assert curate_env_references(store, "lib/E-v0", runs, off)[stalls].verdict == "pass"
    with pytest.raises(RefGenError, match="check_floor is a percentage .* at most 100"):
        RefGenConfig(envs=["lib/E-v0"], check_floor=150.0)
    with pytest.raises(RefGenError, match="check_episodes must be >= 0"):
        RefGenConfig(envs=["lib/E-v0"], check_episodes=-1)


def test_an_env_whose_references_all_fail_takes_a_ranking_run_that_passes(tmp_path):
    from ldm.refgen import RefGenConfig
    from ldm.refgen.stage import fallback_references

    store = Store(tmp_path / "s")
    # the library's top candidate started high and never improved on E (Mario's PPO)
    top = _fake_run(store, "lib/E-v0", [470.0, 480.0, 460.0, 475.0] * 10)
    other = _fake_run(store, "lib/E-v0", list(np.linspace(100, 250, 40)))  # A2C learned
    flat = _fake_run(store, "lib/E-v0", [5.0, 6.0, 5.0, 6.0] * 10)  # a third: nothing
    # a run an earlier config left (another budget): not a ranking run of this one
    stale = _fake_run(store, "lib/E-v0", list(np.linspace(100, 400, 40)))
    fine = _fake_run(store, "lib/F-v0", list(np.linspace(0, 100, 40)))
    ranking_f = _fake_run(store, "lib/F-v0", list(np.linspace(0, 50, 40)))
    references = {top, fine}
    verdicts = {
        **curate_env(store, "lib/E-v0", only={top}),
        **curate_env(store, "lib/F-v0", only={fine}),
    }
    assert verdicts[top].verdict == "fail"
    cfg = RefGenConfig(envs=["lib/E-v0"])
    ranking_runs = {top, other, flat, fine, ranking_f}
    found = fallback_references(
        store, store.runs(), references, verdicts, cfg, ranking_runs, progress=False
    )
    assert found == {"lib/E-v0": [other]}  # judged among the fallbacks, not against `top`
    assert stale not in verdicts and stale not in references
    assert verdicts[other].verdict == "pass" and verdicts[flat].verdict == "fail"
    assert store.runs()[other].verdict == "pass" and other in references
    assert ranking_f not in references and ranking_f not in verdicts  # F has its reference


def test_recording_matches_what_the_env_did(tmp_path):
    from stable_baselines3.common.env_util import make_vec_env

    from ldm.refgen.record import RecordingVecEnv

    store = Store(tmp_path / "s")
    spec_o = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
    w = store.create_run("classic-control/CartPole-v1", "classic-control", spec_o, DISC, 2, {})
    venv = RecordingVecEnv(make_vec_env("CartPole-v1", n_envs=2, seed=0), w)
    obs = venv.reset()
    first = obs.copy()
    for _ in range(60):
        obs, r, d, infos = venv.step(np.array([1, 1]))
    assert w.meta.stream_lengths == (0, 0) and len(w._buf["rewards"]) == 59  # one held back
    venv.finish()
    rid = w.commit()
    reader = store.open_run(rid)
    np.testing.assert_allclose(reader.read(0, "obs", 0, 1)[0], first[0])
    assert reader.length(1) == 60 and reader.read(1, "actions").tolist() == [1] * 60
    assert len(reader.meta.episode_returns) == len(venv.episode_returns)
    assert reader.read(0, "terminated").sum() >= 1


def test_recording_through_the_hub_keeps_each_transition_with_its_step(tmp_path):
    """HubVecEnv steps asynchronously and the transition is written one step late, while the
    workers step: the store must still pair each observation with its action and outcome."""
    from ldm.envs import env_spaces, sb3_vec_env
    from ldm.refgen.record import RecordingVecEnv

    store = Store(tmp_path / "s")
    spec_o, spec_a = env_spaces("classic-control/CartPole-v1")
    w = store.create_run("classic-control/CartPole-v1", "classic-control", spec_o, spec_a, 3, {})
    venv = RecordingVecEnv(sb3_vec_env("classic-control/CartPole-v1", 3, workers=1), w)
    rng = np.random.default_rng(0)
    try:
        venv.seed(7)
        seen = [venv.reset()]
        acts, rews, dones = [], [], []
        for _ in range(40):
            a = rng.integers(0, 2, 3)
            obs, r, d, _ = venv.step(a)
            acts.append(a)
            rews.append(r.copy())
            r += 50.0  # as SB3 adds a truncated episode's bootstrapped value, in place
            dones.append(d)
            seen.append(obs)
        venv.finish()
    finally:
        venv.close()  # nothing held back by now: the writer gets nothing twice
    reader = store.open_run(w.commit())
    assert [reader.length(k) for k in range(3)] == [40, 40, 40]
    for k in range(3):
        done = np.array([d[k] for d in dones])
        obs = reader.read(k, "obs")
        # each row is the observation the action was chosen on: the reset's or the step's
        # before (after an episode's end the step returned the next episode's first)
        np.testing.assert_allclose(obs, np.stack([o[k] for o in seen[:-1]]))
        assert reader.read(k, "actions").tolist() == [int(a[k]) for a in acts]
        np.testing.assert_allclose(reader.read(k, "rewards"), [r[k] for r in rews])
        ended = reader.read(k, "terminated") | reader.read(k, "truncated")
        assert ended.tolist() == done.tolist() and done.any()


CONFIG = dict(
    envs=["classic-control/CartPole-v1", "toy-text/FrozenLake-v1"],
    candidates=["ppo-8env", "a2c-8env"],
    rank_envs=1,
    rank_budget=4000,
    train_budget=4000,
    top_n=1,
    workers=2,
)


@pytest.mark.slow
def test_stage_ranks_trains_relabels_curates_and_resumes_after_kill(tmp_path):
    store_dir = tmp_path / "store"
    code = textwrap.dedent(
        f"""
        from ldm.refgen import RefGenConfig, run_refgen
        run_refgen(RefGenConfig(**{CONFIG!r}), {str(store_dir)!r}, progress=False)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    jobs = store_dir / "refgen" / "jobs.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (jobs.exists() and len(json.loads(jobs.read_text())) >= 1):
        time.sleep(0.5)
    semaphores = shm_semaphores([p.pid, *descendants(p.pid)])  # the job pool's
    assert semaphores
    # the run is killed -9 (its job processes follow by the parent-death signal); killing the
    # whole group at once would kill multiprocessing's resource tracker too, which nothing can
    # stand in for: its semaphores would stay in /dev/shm
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done_before = len(json.loads(jobs.read_text()))
    assert 1 <= done_before < 4

    from ldm.refgen import RefGenConfig, run_refgen

    summary = run_refgen(RefGenConfig(**CONFIG), str(store_dir), progress=False)
    store = Store(store_dir)
    runs = store.runs()
    assert len(runs) == 4  # 2 candidates ranked on each env, no duplicates
    assert store.pending() == []
    refs = [r for r, e in runs.items() if e.verdict != "excluded"]
    # one reference per env, plus the env's other ranking run where the first failed curation
    assert {runs[r].env_id for r in refs} == set(CONFIG["envs"])
    for env in CONFIG["envs"]:
        on_env = [runs[r].verdict for r in refs if runs[r].env_id == env]
        assert on_env in (["pass"], ["fail", "pass"], ["pass", "fail"], ["fail", "fail"]), on_env
        assert (env in summary.fallbacks) == (sorted(on_env) == ["fail", "pass"])
    for r in refs:
        reader = store.open_run(r)
        assert reader.has_reference_actions() and reader.meta.relabelled
        assert reader.meta.curation.verdict in ("pass", "fail")
    ranking = json.loads((store_dir / "refgen" / "ranking-classic-control.json").read_text())
    assert {r["candidate"] for r in ranking["ranking"]} == {"ppo-8env", "a2c-8env"}
    assert set(summary.libraries) == {"classic-control", "toy-text"}
    assert not [s for s in semaphores if os.path.exists(s)], "the killed run left semaphores"


@pytest.mark.slow
def test_ppo_cartpole_reference_reaches_475_with_sensible_anchors(tmp_path):

    from ldm.refgen.jobs import Job, run_job

    cand = {c.name: c for c in load_pool()}["ppo-8env"]
    out = run_job(
        Job(
            "train",
            "classic-control/CartPole-v1",
            "classic-control",
            cand,
            40000,
            0,
            str(tmp_path / "s"),
        )
    )
    meta = Store(tmp_path / "s").open_run(out.run_id).meta
    assert np.mean(out.final_returns) >= 475
    assert meta.first10 < 50 and meta.last10 >= 475


def test_no_candidate_of_sb3_for_unbounded_continuous_actions() -> None:
    from ldm.spaces import SpaceSpec

    obs = SpaceSpec("continuous", (2,), low=(-1.0, -1.0), high=(1.0, 1.0))
    free = SpaceSpec("continuous", (1,), low=(-float("inf"),), high=(float("inf"),))
    bounded = SpaceSpec("continuous", (1,), low=(-1.0,), high=(1.0,))
    from ldm.refgen.candidates import load_pool

    sac = load_pool(None, ["sac-4env"])[0]
    ok, why = sac.compatible(obs, free)  # gym-lqr: SB3 asserts finite bounds at build time
    assert not ok and "finite action bounds" in why
    assert sac.compatible(obs, bounded)[0]


def test_a_library_is_ranked_on_what_its_runs_play_deterministically(tmp_path):
    """The LDM copies a reference's deterministic actions, so a ranking run is ranked on its
    check where it played one: IDP's SAC run led on its (exploring) training returns and
    played 0.19 expert-normalised. Unchecked runs are ranked on their training returns."""
    from ldm.refgen import RefGenConfig
    from ldm.refgen.jobs import Job, JobResult
    from ldm.refgen.plan import LibraryPlan
    from ldm.refgen.ranking import ranking_table

    env = "classic-control/Pendulum-v1"
    store = Store(tmp_path / "s")
    pool = load_pool(None, ["ppo-8env", "sac-4env"])
    trained = {"ppo-8env": np.linspace(-1500, -900, 40), "sac-4env": np.linspace(-1500, -300, 40)}
    played = {"ppo-8env": [-150.0, -170.0, -160.0], "sac-4env": [-1100.0, -1200.0, -1150.0]}

    def table(check_episodes):
        results, jobs = {}, []
        for c in pool:
            rid = _fake_run(store, env, list(trained[c.name]))
            store.update_meta(rid, {"check_returns": played[c.name]})
            job = Job("rank", env, "classic-control", c, 1000, 0, str(store.path),
                      check_episodes=check_episodes)  # fmt: skip
            last = tuple(trained[c.name][-4:].tolist())
            results[job.key] = JobResult("done", job, rid, final_returns=last)
            jobs.append(job)
        lp = LibraryPlan("classic-control", (env,), (env,), tuple(jobs), ())
        return ranking_table(lp, pool, RefGenConfig(envs=[env]), str(store.path), results)

    checked = table(3)
    assert checked.by_env[env] == ("ppo-8env", "sac-4env")
    assert checked.candidates == ["ppo-8env", "sac-4env"]
    assert checked.check_returns[env] == {"ppo-8env": -160.0, "sac-4env": -1150.0}
    assert checked.final_returns[env]["sac-4env"] > checked.final_returns[env]["ppo-8env"]
    unchecked = table(0)
    assert unchecked.by_env[env] == ("sac-4env", "ppo-8env") and not unchecked.check_returns
    on_disk = json.loads((tmp_path / "s" / "refgen" / "ranking-classic-control.json").read_text())
    assert "check_returns" not in on_disk  # the last table written: unchecked
