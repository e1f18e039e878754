"""The isolated process backend through the proxies: API, seeds, faults, cleanup."""

import signal
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest

import ldm.envs as E
from ldm.envs.proxy import ProxyEnv
from ldm.envs.vector import ProxyVectorEnv
from ldm.errors import EnvError
from tests.procs import alive

CARTPOLE = "classic-control/CartPole-v1"


def test_check_env_passes_on_a_proxied_env():
    from gymnasium.utils.env_checker import check_env

    env = E.make(CARTPOLE)
    try:
        check_env(env, skip_render_check=True)
        assert isinstance(env.observation_space, gym.spaces.Box)
    finally:
        env.close()


def test_same_seed_same_observations_as_gymnasium():
    env = E.make(CARTPOLE)
    ref = gym.make("CartPole-v1")
    try:
        o1, _ = env.reset(seed=7)
        o2, _ = ref.reset(seed=7)
        np.testing.assert_array_equal(o1, o2)
        for a in [0, 1, 1, 0, 1]:
            np.testing.assert_array_equal(env.step(a)[0], ref.step(a)[0])
    finally:
        env.close()


@pytest.mark.parametrize("backend", ["process", "inprocess"])
def test_vector_env_steps_and_autoresets(backend):
    venv = E.make_vec(CARTPOLE, 4, backend=backend, workers=2)
    try:
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (4, 4)
        finished = 0
        for _ in range(200):
            obs, rew, term, trunc, infos = venv.step(np.ones(4, dtype=np.int64))
            if term.any():
                finished += int(term.sum())
                assert infos["_final_obs"][term].all()
                assert infos["final_obs"][np.flatnonzero(term)[0]].shape == (4,)
        assert finished >= 4 and obs.shape == (4, 4) and rew.dtype == np.float64
    finally:
        venv.close()
        venv.close()  # closing twice is safe


def test_workers_launch_together_stay_alive_and_a_failed_start_leaves_none(faulty_spec):
    import os

    from tests.procs import descendants

    me = os.getpid()
    before = descendants(me)
    venv = ProxyVectorEnv(faulty_spec, "Faulty-ok-v0", 4, workers=2)
    try:
        pids = [w.conn.proc.pid for w in venv._workers]
        assert len(set(pids)) == 2 and all(alive(p) for p in pids)
        venv.reset(seed=0)
        assert venv.step(np.zeros(4, dtype=np.int64))[1].tolist() == [1.0] * 4
        assert all(w.alive for w in venv._workers)
    finally:
        venv.close()
    # every worker fails at make (an argument the env does not take): none is left behind
    with pytest.raises(EnvError, match=r"Faulty-ok-v0\[w0\].*'make'.*bogus"):
        ProxyVectorEnv(faulty_spec, "Faulty-ok-v0", 4, workers=2, bogus=1)
    deadline = time.monotonic() + 10
    while descendants(me) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not descendants(me) - before


def test_worker_envs_carry_no_passive_env_checker():
    venv = E.make_vec(CARTPOLE, 2, backend="inprocess", workers=1)
    try:
        server = venv._workers[0].conn.server
        chain, env = [], server.envs[venv._workers[0].handles[0]].env
        while env is not getattr(env, "env", env):
            chain.append(type(env).__name__)
            env = env.env
        assert "PassiveEnvChecker" not in chain and "TimeLimit" in chain
    finally:
        venv.close()


def test_vector_reset_seeds_reproduce():
    a = E.make_vec(CARTPOLE, 3, workers=2)
    b = E.make_vec(CARTPOLE, 3, workers=1)
    try:
        np.testing.assert_array_equal(a.reset(seed=5)[0], b.reset(seed=5)[0])
    finally:
        a.close()
        b.close()


def test_action_outside_space_is_a_clear_error():
    env = E.make(CARTPOLE)
    venv = E.make_vec("classic-control/Pendulum-v1", 2, workers=1)
    try:
        env.reset(seed=0)
        with pytest.raises(EnvError, match="outside the action space"):
            env.step(5)
        venv.reset(seed=0)
        with pytest.raises(EnvError, match="outside the action space"):
            venv.step(np.array([[3.0], [0.0]], dtype=np.float32))
    finally:
        env.close()
        venv.close()


def test_unknown_env_id_lists_close_matches():
    with pytest.raises(EnvError, match="CartPole-v1"):
        E.make("classic-control/CartPole-v9")
    with pytest.raises(EnvError, match="Close matches"):
        E.resolve_env_id("CartPol-v1")
    spec, rid = E.resolve_env_id("MiniGrid-Empty-5x5-v0")  # a bare id known to exactly one library
    assert (spec.name, rid) == ("minigrid", "MiniGrid-Empty-5x5-v0")
    # gymnasium's and legacy gym's CartPole both exist: a bare id must be qualified
    with pytest.raises(EnvError, match=r"several libraries.*classic-control/CartPole-v1"):
        E.resolve_env_id("CartPole-v1")


def test_worker_crash_names_env_and_stderr_then_restarts(faulty_spec):
    env = ProxyEnv(faulty_spec, "Faulty-crash-v0")
    try:
        env.reset(seed=0)
        env.step(0)
        env.step(0)
        with pytest.raises(EnvError, match=r"faulty/Faulty-crash-v0.*died") as info:
            env.step(0)
        assert "simulator exploded" in str(info.value)
        obs, _ = env.reset(seed=0)  # the proxy restarts the dead worker
        assert obs.shape == (3,)
    finally:
        env.close()


def test_worker_hang_times_out(faulty_spec):
    env = ProxyEnv(faulty_spec, "Faulty-hang-v0", timeout=3)
    try:
        env.reset(seed=0)
        env.step(0)
        env.step(0)
        t = time.monotonic()
        with pytest.raises(EnvError, match="did not answer 'step' within 3 s"):
            env.step(0)
        assert time.monotonic() - t < 10
    finally:
        env.close()


def test_exception_in_step_is_reported_and_worker_keeps_serving(faulty_spec):
    venv = ProxyVectorEnv(faulty_spec, "Faulty-raise-v0", 2, workers=1)
    try:
        venv.reset(seed=0)
        venv.step(np.zeros(2, dtype=np.int64))
        venv.step(np.zeros(2, dtype=np.int64))
        with pytest.raises(EnvError, match="RuntimeError: bad physics at step 3") as info:
            venv.step(np.zeros(2, dtype=np.int64))
        assert "faulty/Faulty-raise-v0" in str(info.value)
        venv.reset(seed=1)  # same worker still alive and serving
    finally:
        venv.close()


def test_no_worker_outlives_a_killed_client(tmp_path):
    script = tmp_path / "client.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys, time
            import ldm.envs as E
            v = E.make_vec("{CARTPOLE}", 4, workers=2)
            print(",".join(str(w.conn.proc.pid) for w in v._workers), flush=True)
            time.sleep(60)
            """
        )
    )
    client = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in client.stdout.readline().strip().split(",")]
    assert all(alive(p) for p in pids)
    client.send_signal(signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


def test_sb3_learns_on_a_proxied_vector_env():
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    venv = E.sb3_vec_env(CARTPOLE, 4, workers=2)
    try:
        model = PPO(
            "MlpPolicy", venv, n_steps=256, batch_size=256, n_epochs=2, seed=0, device="cpu"
        )
        # no outputs: SB3's default logger leaves an empty /tmp/SB3-<time> dir behind
        model.set_logger(Logger(folder=None, output_formats=[]))
        model.learn(total_timesteps=2048)
        assert model.num_timesteps >= 2048
        obs = venv.reset()
        assert obs.shape == (4, 4)
    finally:
        venv.close()
