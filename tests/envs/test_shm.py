"""The shared-memory step path: layout, equality with the framed path, worker slices,
EnvPool-style first-ready receives, faults, and no buffer left behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import ldm.envs as E
from ldm.envs.transport import shm, shm_buffer, shm_layout
from ldm.envs.vector import ProxyVectorEnv
from ldm.errors import EnvError

CARTPOLE = "classic-control/CartPole-v1"


def _shm_names() -> set[str]:
    return {f.name for f in shm_buffer.SHM_DIR.glob(f"{shm_buffer.NAME_PREFIX}*")}


def test_layout_is_aligned_and_sized_from_the_spaces():
    spaces = {
        "observation": {"type": "Box", "shape": [3, 2], "dtype": "<f4"},
        "action": {"type": "Discrete", "n": 4, "start": 0},
    }
    layout = shm_layout.plan_layout(spaces, 5)
    fields = {f.name: f for f in layout.fields}
    assert fields["obs"].shape == (5, 3, 2) and fields["obs"].dtype == "<f4"
    assert fields["actions"].shape == (5,) and fields["actions"].dtype == "<i8"
    assert fields["final_obs"].shape == (5, 3, 2) and fields["info_values"].shape == (5, 16)
    # 120 B of obs -> 128; 5 x 16 info slots of 8 B = 640; their 80 presence flags -> 128
    offsets = [0, 128, 192, 256, 320, 384, 448, 576, 1216, 1344, 1984]
    assert [f.offset for f in layout.fields] == offsets
    assert layout.size == 2112 and all(f.offset % shm_layout.ALIGN == 0 for f in layout.fields)
    dict_obs = {**spaces, "observation": {"type": "Dict", "spaces": {}}}
    with pytest.raises(EnvError, match="'Dict' has no shared-memory layout"):
        shm_layout.plan_layout(dict_obs, 5)


def _roll(venv, steps: int, seed: int = 3):
    obs, _ = venv.reset(seed=seed)
    rng = np.random.default_rng(0)
    out = [obs]
    for _ in range(steps):
        a = rng.integers(0, 2, venv.num_envs)
        obs, rew, term, trunc, infos = venv.step(a)
        finals = infos.get("final_obs")
        final = [] if finals is None else [f for f in finals if f is not None]
        out += [obs, rew, term, trunc, *final]
    return out


def test_same_observations_as_the_framed_path_and_slices_per_worker():
    shared = E.make_vec(CARTPOLE, 5, workers=2)
    framed = E.make_vec(CARTPOLE, 5, workers=2, shared_memory=False)
    try:
        handles = [w.steps for w in shared._workers]
        assert all(isinstance(h, shm.SharedSteps) for h in handles)
        assert [h.views["obs"].shape for h in handles] == [(3, 4), (2, 4)]  # each its own slice
        assert not any(isinstance(w.steps, shm.SharedSteps) for w in framed._workers)
        a, b = _roll(shared, 120), _roll(framed, 120)
        assert len(a) == len(b) > 4 * 120  # episodes ended: final observations compared too
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
            assert np.asarray(x).dtype == np.asarray(y).dtype
    finally:
        shared.close()
        framed.close()


def _play(env, actions: list[int]) -> list:
    out = [env.reset(seed=5)]
    for a in actions:
        out.append(env.step(a))
        if out[-1][2] or out[-1][3]:  # no autoreset: the episode ends here until `reset`
            out.append(env.reset(seed=6))
    return out


def test_the_single_env_steps_through_the_shared_buffer_as_on_the_framed_path():
    shared = E.make(CARTPOLE)
    framed = E.make(CARTPOLE, backend="inprocess")  # no buffer to share: framed steps
    try:
        steps = shared._worker.steps
        assert isinstance(steps, shm.SharedSteps) and not steps.autoreset
        assert not isinstance(framed._worker.steps, shm.SharedSteps)
        actions = np.random.default_rng(0).integers(0, 2, 60).tolist()
        a, b = _play(shared, actions), _play(framed, actions)
        assert len(a) == len(b) > 61  # an episode ended: its reset compared too
        for x, y in zip(a, b):
            assert len(x) == len(y)
            np.testing.assert_array_equal(x[0], y[0])
            assert x[0].dtype == y[0].dtype
            assert [(type(u), u) for u in x[1:]] == [(type(v), v) for v in y[1:]]
    finally:
        shared.close()
        framed.close()


def _infos(venv, steps: int) -> list[dict]:
    venv.reset(seed=0)
    out = []
    for _ in range(steps):
        out.append(venv.step(np.zeros(venv.num_envs, dtype=np.int64))[4])
    return out


def test_infos_and_final_observations_travel_in_the_buffer_as_on_the_framed_path(faulty_spec):
    shared = ProxyVectorEnv(faulty_spec, "Faulty-info-v0", 2, workers=1)
    framed = ProxyVectorEnv(faulty_spec, "Faulty-info-v0", 2, workers=1, shared_memory=False)
    try:
        a, b = _infos(shared, 23), _infos(framed, 23)  # two episodes of 10 steps, and a bit
        steps = shared._workers[0].steps
        assert [name for name, _ in steps.info_keys] == ["t", "x", "odd", "late"]
        for step, (x, y) in enumerate(zip(a, b), start=1):
            assert sorted(x) == sorted(y), step
            for key in x:
                if key in ("final_obs", "final_info"):
                    assert [np.asarray(f).tolist() for f in x[key]] == [
                        np.asarray(f).tolist() for f in y[key]
                    ]
                else:
                    assert x[key].tolist() == y[key].tolist(), (step, key)
                    assert [type(v) for v in x[key]] == [type(v) for v in y[key]], (step, key)
        assert a[0]["t"].tolist() == [1, 1] and a[4]["note"].tolist() == ["five", "five"]
        assert a[9]["final_info"][0] == {"t": 10, "x": 10 / 3, "odd": False, "late": 2.5}
        assert "final_obs" not in a[10] and "late" not in a[10]  # a fresh episode
    finally:
        shared.close()
        framed.close()


def test_sandboxed_worker_shares_only_its_buffer():
    import shutil

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed")
    venv = E.make_vec(CARTPOLE, 2, workers=1, sandbox=True)
    try:
        assert isinstance(venv._workers[0].steps, shm.SharedSteps)
        obs, _ = venv.reset(seed=1)
        obs2, rew, *_ = venv.step(np.array([0, 1]))
        assert obs2.shape == (2, 4) and rew.tolist() == [1.0, 1.0]
        assert not np.array_equal(obs, obs2)
    finally:
        venv.close()
    assert not _shm_names()


def test_first_ready_envs_come_back_before_a_slow_one(faulty_spec):
    venv = ProxyVectorEnv(faulty_spec, "Faulty-slow-v0", 4, workers=4)
    try:
        venv.reset(seed=[0, 1, 2, 100])  # env 3 sleeps 0.5 s per step
        venv.send(np.zeros(4, dtype=np.int64))
        t0 = time.monotonic()
        obs, rew, term, trunc, infos, ids = venv.recv(min_envs=2)
        assert time.monotonic() - t0 < 0.4
        assert 3 not in ids.tolist() and len(ids) >= 2 and obs.shape == (len(ids), 3)
        with pytest.raises(EnvError, match="worker 3 all together, and only after `recv`"):
            venv.send(np.zeros(1, dtype=np.int64), env_ids=[3])
        with pytest.raises(EnvError, match="still pending"):
            venv.step(np.zeros(4, dtype=np.int64))
        venv.send(np.zeros(len(ids), dtype=np.int64), env_ids=ids)
        fast_steps = 0
        while True:  # the fast envs keep stepping while env 3 sleeps
            *_, ids = venv.recv(min_envs=1)
            if 3 in ids.tolist():
                break
            fast_steps += len(ids)
            venv.send(np.zeros(len(ids), dtype=np.int64), env_ids=ids)
        assert fast_steps >= 3
        if len(ids) < 4:
            *_, rest = venv.recv()  # everything still out
            assert sorted(ids.tolist() + rest.tolist()) == [0, 1, 2, 3]
        venv.step(np.zeros(4, dtype=np.int64))  # back to synchronous steps
        venv.send(np.zeros(4, dtype=np.int64))
        venv.recv(min_envs=1)
        obs, _ = venv.reset(seed=[0, 1, 2, 3])  # drops what is still out, starts over
        assert obs.shape == (4, 3)
        venv.step(np.zeros(4, dtype=np.int64))
    finally:
        venv.close()


@pytest.mark.parametrize(
    "mode,message", [("crash", r"died.*during 'step'"), ("raise", "bad physics at step 3")]
)
def test_faults_mid_step_on_the_shared_path(faulty_spec, mode, message):
    venv = ProxyVectorEnv(faulty_spec, f"Faulty-{mode}-v0", 2, workers=1)
    try:
        assert isinstance(venv._workers[0].steps, shm.SharedSteps)
        venv.reset(seed=0)
        venv.step(np.zeros(2, dtype=np.int64))
        venv.step(np.zeros(2, dtype=np.int64))
        with pytest.raises(EnvError, match=message):
            venv.step(np.zeros(2, dtype=np.int64))
    finally:
        venv.close()


def test_an_observation_outside_its_space_is_named_on_the_shared_path(faulty_spec):
    shared = ProxyVectorEnv(faulty_spec, "Faulty-badobs-v0", 2, workers=1)
    framed = ProxyVectorEnv(faulty_spec, "Faulty-badobs-v0", 2, workers=1, shared_memory=False)
    try:
        shared.reset(seed=0)
        with pytest.raises(
            EnvError, match=r"\(4,\) does not fit the observation space \(shape \[3\]"
        ):
            shared.step(np.zeros(2, dtype=np.int64))
        framed.reset(seed=0)
        assert framed.step(np.zeros(2, dtype=np.int64))[0].shape == (2, 4)  # passed through
    finally:
        shared.close()
        framed.close()


def test_hung_worker_times_out_on_the_shared_path(faulty_spec):
    venv = ProxyVectorEnv(faulty_spec, "Faulty-hang-v0", 1, workers=1, timeout=2)
    try:
        venv.reset(seed=0)
        venv.step(np.zeros(1, dtype=np.int64))
        venv.step(np.zeros(1, dtype=np.int64))
        with pytest.raises(EnvError, match="did not answer 'step' within 2 s"):
            venv.step(np.zeros(1, dtype=np.int64))
        assert not venv._workers[0].alive  # killed
    finally:
        venv.close()


def test_killed_worker_and_killed_client_leave_no_buffer(tmp_path):
    before = _shm_names()
    script = tmp_path / "client.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, time
            import ldm.envs as E
            from ldm.envs.transport import shm_buffer
            v = E.make_vec("{CARTPOLE}", 4, workers=2)
            named = shm_buffer.SharedBuffer.named("/unused")  # a Docker-style name, never released
            named.map(4096)
            print(",".join(str(w.conn.proc.pid) for w in v._workers), named.path, flush=True)
            time.sleep(60)
            """
        )
    )
    client = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids, name = client.stdout.readline().split()
    pids = [int(p) for p in pids.split(",")]
    os.kill(pids[0], signal.SIGKILL)  # a worker killed -9
    client.send_signal(signal.SIGKILL)  # then the client
    client.wait()
    assert os.path.exists(name)  # the one name never unlinked: swept by the next client
    assert shm_buffer.sweep_stale() >= 1
    assert _shm_names() == before
    venv = E.make_vec(CARTPOLE, 2, workers=1)
    try:
        venv.reset(seed=0)
        assert _shm_names() == before  # memfd buffers have no name at all
    finally:
        venv.close()


def test_a_dead_worker_is_reported_then_restarted_with_a_fresh_buffer():
    venv = E.make_vec(CARTPOLE, 2, workers=1)
    try:
        venv.reset(seed=0)
        old = venv._workers[0].conn
        os.kill(old.proc.pid, signal.SIGKILL)
        old.proc.wait()
        with pytest.raises(EnvError, match=r"died \(exit code -9\) during 'step'"):
            venv.step(np.zeros(2, dtype=np.int64))
        obs, _ = venv.reset(seed=0)  # restarts the dead worker
        assert venv._workers[0].conn is not old
        assert isinstance(venv._workers[0].steps, shm.SharedSteps) and obs.shape == (2, 4)
    finally:
        venv.close()


@pytest.mark.slow
@pytest.mark.docker
def test_docker_worker_shares_only_its_buffer_and_leaves_no_name():
    import shutil

    from ldm.envs.transport import docker

    if not shutil.which("docker") or not shutil.which("dockerd"):
        pytest.skip("no Docker engine on this machine (apt-get install docker.io)")
    try:
        started = docker.ensure_engine()
    except EnvError as e:
        pytest.skip(f"no Docker engine can run here: {e}")
    before = _shm_names()
    containers = set(docker._docker("ps", "-q").stdout.split())
    try:
        venv = E.make_vec(CARTPOLE, 3, backend="docker", workers=1)
        local = E.make_vec(CARTPOLE, 3, workers=1)
        try:
            conn = venv._workers[0].conn
            assert isinstance(venv._workers[0].steps, shm.SharedSteps)
            mounts = [a.rsplit("target=", 1)[1] for a in conn.proc.args if a.startswith("type=")]
            # the buffer and its two wake-up FIFOs, nothing else of the host
            assert mounts == ["/ldm-shm", "/ldm-shm-to", "/ldm-shm-from"]
            assert conn._rebound_fd is not None  # steps skip the engine's stdin/stdout relay
            assert _shm_names() == before  # unlinked as soon as the worker opened them
            for x, y in zip(_roll(venv, 40), _roll(local, 40)):
                np.testing.assert_array_equal(x, y)
            # a container that dies mid-run is reported as a dead worker, not a wait
            (ours,) = set(docker._docker("ps", "-q").stdout.split()) - containers
            docker._docker("kill", ours.decode())
            with pytest.raises(EnvError, match=r"died \(exit code .+\) during 'step'"):
                for _ in range(50):
                    venv.step(np.zeros(3, dtype=np.int64))
        finally:
            venv.close()
            local.close()
    finally:
        if started is not None:
            started.terminate()
            started.wait(timeout=60)
