"""The JAX candidates (Stable-Baselines-Jax) of ldm/refgen/candidates.toml: parsed with their
framework and compatibility, and a real job through run_job that records, relabels and is
curated by the same code as SB3's."""

import numpy as np
import pytest

from ldm.refgen.candidates import ALGORITHMS, Candidate, algorithm_class, load_pool
from ldm.spaces import SpaceSpec

BOX = SpaceSpec("continuous", (3,), "float32", low=(-1.0,) * 3, high=(1.0,) * 3)
DISC = SpaceSpec("discrete", (), "int64", n=2)
IMG = SpaceSpec("image", (64, 64, 3), "uint8")
GRID = SpaceSpec("image", (7, 7, 3), "uint8")


def test_the_jax_candidates_parse_with_their_algorithm_framework_and_spaces():
    pool = {c.name: c for c in load_pool()}
    jax = {n: c for n, c in pool.items() if c.framework == "jax"}
    assert set(jax) == {
        "sbx-sac",
        "sbx-tqc",
        "sbx-td3",
        "sbx-crossq",
        "sbx-ppo",
        "sbx-dqn",
        "sbx-sac-4env",
    }
    assert {c.algo for c in jax.values()} == {k for k in ALGORITHMS if k.startswith("sbx.")}
    assert pool["sac"].framework == "torch" and pool["sbx-sac-4env"].n_envs == 4
    # sac-4env's settings, in JAX
    assert pool["sbx-sac-4env"].kwargs == pool["sac-4env"].kwargs
    import sbx

    assert (
        algorithm_class("sbx.CrossQ") is sbx.CrossQ and pool["sbx-sac"].algorithm_class() is sbx.SAC
    )
    for name in ("sbx-sac", "sbx-tqc", "sbx-td3", "sbx-crossq", "sbx-ppo"):
        assert pool[name].compatible(BOX, BOX) == (True, "MlpPolicy")
    assert pool["sbx-dqn"].compatible(BOX, DISC) == (True, "MlpPolicy")
    assert pool["sbx-ppo"].compatible(BOX, DISC) == (True, "MlpPolicy")
    ok, why = pool["sbx-sac"].compatible(BOX, DISC)
    assert not ok and "discrete actions" in why
    # sbx neither one-hot encodes discrete observations nor scales images: vectors only
    for obs in (DISC, IMG, GRID):
        ok, why = pool["sbx-ppo"].compatible(obs, DISC)
        assert not ok and f"{obs.kind} observations" in why and "continuous" in why
        assert pool["ppo"].compatible(obs, DISC)[0]


def test_a_jax_candidate_in_a_pool_file_is_read_and_a_wrong_name_is_named(tmp_path):
    from ldm.errors import RefGenError

    f = tmp_path / "pool.toml"
    f.write_text(
        '[[candidate]]\nname = "x"\nalgo = "sbx.SAC"\nn_envs = 2\n'
        "[candidate.kwargs]\nlearning_starts = 10\n"
    )
    assert load_pool(f) == [Candidate("x", "sbx.SAC", 2, {"learning_starts": 10})]
    f.write_text('[[candidate]]\nname = "y"\nalgo = "SBX_SAC"\n')
    with pytest.raises(RefGenError, match=r"'SBX_SAC' is not one of .*'sbx\.SAC'"):
        load_pool(f)


def test_one_compute_thread_gives_jax_one_busy_thread_on_every_cpu(tmp_path):
    """With the job's setting, a jitted matmul loop keeps one thread busy (jax 0.10 on two
    cores: four without it), and every thread of the process may still run on every CPU."""
    import os
    import subprocess
    import sys

    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        pytest.skip("one CPU: a default pool would have one thread too")
    script = tmp_path / "probe.py"
    script.write_text(
        """
import os, sys
from ldm.refgen.threads import one_compute_thread
if sys.argv[1] == "1":
    one_compute_thread("jax")
import jax, jax.numpy as jnp
def ticks():
    out = {}
    for t in os.listdir("/proc/self/task"):
        f = open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()
        out[t] = int(f[11]) + int(f[12])
    return out
f = jax.jit(lambda a, b: jnp.tanh(jnp.tanh(a @ b) @ b))
a = jnp.ones((256, 1024)); b = jnp.ones((1024, 1024)) * 1e-3
f(a, b).block_until_ready()
t0 = ticks()
for _ in range(40):
    a = f(a, b)
a.block_until_ready()
t1 = ticks()
busy = [t1[t] - t0.get(t, 0) for t in t1]
print(sum(b > 0.1 * sum(busy) for b in busy))
print(all(os.sched_getaffinity(int(t)) == os.sched_getaffinity(0) for t in t1))
"""
    )
    env = {**os.environ, "XLA_FLAGS": ""}
    runs = {
        mode: subprocess.run(
            [sys.executable, str(script), mode], capture_output=True, text=True, env=env, check=True
        ).stdout.split()
        for mode in ("0", "1")
    }
    assert runs["1"] == ["1", "True"], runs
    assert int(runs["0"][0]) > 1, runs  # the setting is what makes it one


@pytest.mark.slow
def test_a_jax_job_records_relabels_and_is_curated(tmp_path):
    """sbx's SAC through run_job: the run is recorded and committed with its time split,
    relabelled by the model in memory with the actions its saved policy file gives, and
    curation judges it like any run."""
    from ldm.data import Store
    from ldm.refgen.curate import curate_env, relabel_run
    from ldm.refgen.jobs import Job, run_job

    cand = Candidate("sbx-sac-tiny", "sbx.SAC", 1, {"learning_starts": 50, "batch_size": 32})
    store_dir = str(tmp_path / "s")
    env_id = "classic-control/Pendulum-v1"
    out = run_job(Job("train", env_id, "classic-control", cand, 600, 0, store_dir))
    assert out.status == "done" and out.transitions == 600 and out.episodes == 3
    store = Store(store_dir)
    reader = store.open_run(out.run_id)
    meta = reader.meta
    assert meta.algorithm == "sbx.SAC" and meta.relabelled
    assert set(meta.extra["time_split"]) == {"env", "record", "learner", "cpu", "check", "relabel"}
    split = meta.extra["time_split"]
    assert split["learner"] > 0 and split["relabel"] > 0 and split["cpu"] > 0
    by_job = reader.read(0, "ref_actions")
    taken = reader.read(0, "actions")
    assert by_job.shape == taken.shape == (600, 1)
    assert np.abs(by_job).max() <= 2.0 and (by_job != taken).any()  # deterministic, in bounds
    relabel_run(store, out.run_id)  # from the saved policy file, as the stage would
    np.testing.assert_allclose(store.open_run(out.run_id).read(0, "ref_actions"), by_job, atol=1e-5)
    verdict = curate_env(store, env_id)[out.run_id]
    assert verdict.verdict in ("pass", "fail") and verdict.final_return == pytest.approx(
        np.mean(out.final_returns)
    )
    assert store.runs()[out.run_id].verdict == verdict.verdict
