"""ldm/refgen/jobs.py's records: a job and its result as jobs.json holds them."""

import json

import pytest

from ldm.errors import RefGenError
from ldm.refgen.candidates import Candidate
from ldm.refgen.jobs import Job, JobResult

#: an entry of the suite's jobs.json, as written before a job held a Candidate record
WRITTEN = {
    "status": "done",
    "job": {
        "phase": "rank",
        "env_id": "classic-control/Acrobot-v1",
        "library": "classic-control",
        "candidate": {
            "name": "a2c-8env",
            "algo": "A2C",
            "n_envs": 8,
            "kwargs": {"ent_coef": 0.0, "n_steps": 8},
            "continuous_only": False,
            "policies": [],
            "note": "",
        },
        "budget": 50000,
        "seed": 0,
        "store": "/work/runs/suite/store",
        "backend": "process",
        "record": True,
        "min_episodes": 30,
        "max_budget": 150000,
    },
    "run_id": "classic-control__Acrobot-v1-a2c-8env-s0-90ed8775e0",
    "final_returns": [-94.0, -88.0],
    "first_returns": [-487.0, -500.0],
    "episodes": 20,
    "seconds": 12.5,
    "transitions": 50000,
}


def test_a_written_job_result_loads_with_its_candidate_and_the_same_key_and_run_id():
    result = JobResult.from_dict(json.loads(json.dumps(WRITTEN)))
    job = result.job
    assert job.candidate == Candidate("a2c-8env", "A2C", 8, {"ent_coef": 0.0, "n_steps": 8})
    # the key and run id a resumed stage matches against are those the file was written with
    assert job.key == "rank:a2c-8env:classic-control/Acrobot-v1:0:50000:e30-150000"
    assert job.run_id == WRITTEN["run_id"]
    assert json.loads(json.dumps(result.to_dict())) == WRITTEN  # written back unchanged


def test_a_job_round_trips_and_unknown_keys_are_named():
    cnn = Candidate("ppo-cnn", "PPO", 8, {"n_steps": 128}, policies=("CnnPolicy",))
    job = Job("train", "ale/ALE/Pong-v5", "ale", cnn, 1000, 2, "s", "docker", record=False)
    back = JobResult.from_dict(json.loads(json.dumps(JobResult("done", job).to_dict())))
    assert back.job == job and back.job.candidate.policies == ("CnnPolicy",)
    entry = json.loads(json.dumps(WRITTEN))
    entry["job"]["candidate"]["lr"] = 0.1
    with pytest.raises(RefGenError, match=r"candidate 'a2c-8env' has unknown keys \['lr'\]"):
        JobResult.from_dict(entry)
    entry = json.loads(json.dumps(WRITTEN))
    entry["job"]["seeds"] = 3
    with pytest.raises(RefGenError, match=r"job in jobs.json has unknown keys \['seeds'\]"):
        JobResult.from_dict(entry)


def test_a_job_relabels_its_run_with_the_policy_it_saved(tmp_path):
    """The job relabels by the model in memory; the actions equal what the stage's relabelling
    computes from the saved policy file, and the stage then has nothing left to relabel."""
    import numpy as np

    from ldm.data import Store
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.curate import relabel_run
    from ldm.refgen.jobs import run_job

    cand = {c.name: c for c in load_pool()}["ppo-8env"]
    store_dir = str(tmp_path / "s")
    out = run_job(
        Job("train", "classic-control/CartPole-v1", "classic-control", cand, 512, 0, store_dir)
    )
    store = Store(store_dir)
    reader = store.open_run(out.run_id)
    assert reader.meta.relabelled and store.runs()[out.run_id].relabelled
    by_job = [reader.read(k, "ref_actions") for k in range(reader.num_streams)]
    assert sum(len(a) for a in by_job) == out.transitions == 512
    relabel_run(store, out.run_id)  # from the policy file, as the stage would
    reread = store.open_run(out.run_id)
    for k, a in enumerate(by_job):
        np.testing.assert_array_equal(reread.read(k, "ref_actions"), a)
    # a deterministic policy: the labels are not just the actions the run took
    taken = np.concatenate([reader.read(k, "actions") for k in range(reader.num_streams)])
    assert (np.concatenate(by_job) != taken).any()


def test_a_checked_job_plays_its_deterministic_policy_within_the_step_limit(tmp_path):
    """With check_episodes, the job's committed run holds that many returns of its final
    policy's deterministic play, each episode cut at 3 x the longest training episode."""
    from ldm.data import Store
    from ldm.envs import episode_step_limit
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.check import CHECK_LIMIT_FACTOR
    from ldm.refgen.jobs import run_job

    cand = {c.name: c for c in load_pool()}["ppo-8env"]
    store_dir = str(tmp_path / "s")
    job = Job("train", "classic-control/CartPole-v1", "classic-control", cand, 512, 0,
              store_dir, check_episodes=3)  # fmt: skip
    out = run_job(job)
    meta = Store(store_dir).open_run(out.run_id).meta
    longest = max(e.length for e in meta.episodes)
    checked = meta.extra["check_returns"]
    assert len(checked) == 3  # CartPole pays 1 a step: a return is the episode's length
    assert all(1 <= r <= CHECK_LIMIT_FACTOR * longest for r in checked)
    # the limit: 3 x the longest episode, unless the catalog declares a shorter one
    assert episode_step_limit("classic-control/CartPole-v1", 10, 3.0) == 30
    assert episode_step_limit("classic-control/CartPole-v1", 10, 0.0) is None
    assert episode_step_limit("classic-control/CartPole-v1", 0, 3.0) is None


def test_an_off_policy_buffer_is_never_larger_than_the_run():
    from stable_baselines3 import PPO, SAC

    from ldm.refgen.candidates import buffer_within_run

    assert buffer_within_run(SAC, {}, 300_000) == {"buffer_size": 300_000}  # default 1M
    assert buffer_within_run(SAC, {"buffer_size": 50_000}, 300_000)["buffer_size"] == 50_000
    assert buffer_within_run(PPO, {"n_steps": 32}, 300_000) == {"n_steps": 32}  # no buffer
