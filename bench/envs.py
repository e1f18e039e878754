"""Environment hub throughput: the isolated process backend against Gymnasium's vector envs.

Every ratio compares contenders measured in turns (`interleaved`: each one steps a third of the
time, three rounds, best round kept), so a machine shared with other jobs loads them alike;
baselines that live in a library's own venv run there as a subprocess stepped on request
(`LibraryBaseline`). Keys, by section:
- cartpole (CartPole, 8 envs, one group: AsyncVectorEnv and the hub's process, sandbox and
  Docker backends with 1 or 2 workers): process_vs_async, sandbox_vs_process and
  docker_vs_process (null with the reason when no Docker engine can run);
- heavy: process_vs_inprocess_heavy (HalfCheetah, 8 envs: the hub / SyncVectorEnv in mujoco's
  venv; the hub's best of `step` with 1 or 2 workers and of the first-ready loop `FirstReady`,
  and `_step` for `step` alone);
- catalog (`catalog_figures`): libraries, envs, envs_checked (envs whose check result
  discovery recorded) and discover_seconds_median (time of `ldm envs discover` per library,
  venv build included, as recorded by the last discovery of each library that records one);
- overhead: overhead_us (per batch step of 8 CartPole envs, one worker: hub time minus
  in-process SyncVectorEnv time, framed, shared, and shared without polling: `shm_blocking`)
  and cpu_us_per_batch_step (CPU of client and workers per batch step: the figure load
  disturbs least; polling spends CPU that would otherwise idle, `shm` minus `shm_blocking`);
- image: image_vs_async_shm (ALE Pong, 8 envs, 64x64 frames: the hub's best of `step` with 2
  or 8 workers and of the first-ready loop / AsyncVectorEnv(shared_memory=True) in the ale
  venv with the same resize; `_step` for `step` alone);
- refgen: refgen_steps_vs_dummy (SB3 PPO `ppo-8env` on CartPole x 8 recording into a store:
  steps/s through the hub / through SB3's in-process DummyVecEnv).
section_seconds: each section's wall time (worker start-ups included), section_cpu_seconds
its CPU (this process and the workers and baselines it started; on a loaded machine the wall
time follows the CPU share, this does not); bench_seconds: the run's. `--quick` measures each contender 0.75 s and PPO 1,024 steps (instead of 30 s and
16,384 steps twice); venvs and images are built before any timing when missing (not quick).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, rate, report  # noqa: E402

import ldm.envs as E  # noqa: E402
from ldm.envs.library.venvs import ensure_venv  # noqa: E402

# the baselines of a library that lives in its own venv, measured there: 8 envs in
# SyncVectorEnv ("sync"), AsyncVectorEnv ("async") or AsyncVectorEnv(shared_memory=True) of an
# Atari game at 64x64 ("atari"); each line read is a number of seconds to step, each line
# written the steps/s, so the baseline is measured in turns with the hub
BASELINE = """
import json, sys, time
import gymnasium as gym
import numpy as np
gid, kind = sys.argv[1], sys.argv[2]
make = lambda: gym.make(gid)
if kind == "atari":
    import ale_py
    gym.register_envs(ale_py)
    def resize(img):  # the same nearest-neighbour 64x64 sampling as ldm's resize_image wrapper
        h, w = img.shape[:2]
        return img[np.arange(64) * h // 64][:, np.arange(64) * w // 64]
    space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    make = lambda: gym.wrappers.TransformObservation(gym.make(gid), resize, space)
    v = gym.vector.AsyncVectorEnv([make] * 8, shared_memory=True)
else:
    v = (gym.vector.AsyncVectorEnv if kind == "async" else gym.vector.SyncVectorEnv)([make] * 8)
v.reset(seed=0)
a = np.stack([v.single_action_space.sample() for _ in range(8)])
for _ in range(20):
    v.step(a)
for line in sys.stdin:
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < float(line):
        for _ in range(20):
            v.step(a)
        done += 160
    print(json.dumps(done / (time.perf_counter() - t0)), flush=True)
v.close()
"""


class LibraryBaseline:
    """A baseline vector env (BASELINE's `kind`) running in the library's own venv."""

    def __init__(self, env_id: str, kind: str) -> None:
        spec, rid = E.resolve_env_id(env_id)
        self.proc = subprocess.Popen(
            [str(ensure_venv(spec)), "-c", BASELINE, rid, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"MUJOCO_GL": "egl", "PATH": "/usr/bin:/bin"},
        )

    def measure(self, seconds: float) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"baseline died: {self.proc.stderr.read()[-800:]}")  # type: ignore[union-attr]
        return float(json.loads(line))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def steps_per_s(venv, seconds: float, n: int = 8) -> float:
    venv.reset(seed=0)
    space = venv.single_action_space
    actions = np.stack([space.sample() for _ in range(n)])

    def chunk() -> int:
        for _ in range(50):
            venv.step(actions)
        return 50 * n

    return rate(chunk, seconds)


def catalog_figures() -> dict:
    """The catalog's size and how long discovery took per library (read, not re-run)."""
    from statistics import median

    from ldm.envs.library.catalog import load_catalog
    from ldm.envs.library.registry import list_envs

    envs = list_envs()
    seconds = [s.discovery["seconds"] for s in load_catalog().values() if "seconds" in s.discovery]
    return {
        "libraries": len({e.library for e in envs}),
        "envs": len(envs),
        "envs_checked": sum(e.checked for e in envs),
        "envs_failing_checks": sum(e.checked and not e.check_ok for e in envs),
        "discover_seconds_median": round(median(seconds), 1) if seconds else None,
        "discover_libraries_timed": len(seconds),
    }


class FirstReady:
    """The hub's EnvPool-style loop over 2 workers of 4 envs: actions go to every env, then
    each `recv` takes the first worker's 4 envs that are ready and sends them their next
    actions at once, so while the client handles one worker's reply the other goes on
    stepping (with `step` both wait for the slower one and for the client). Every counted
    step is a real env step."""

    def __init__(self, env_id: str, workers: int = 2, batch: int = 4) -> None:
        self.venv = E.make_vec(env_id, 8, workers=workers)
        self.batch = batch

    def measure(self, seconds: float) -> float:
        v = self.venv
        v.reset(seed=0)
        actions = np.stack([v.single_action_space.sample() for _ in range(v.num_envs)])
        v.send(actions)
        for _ in range(20):  # warm-up
            *_, ids = v.recv(min_envs=self.batch)
            v.send(actions[ids], ids)
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            *_, ids = v.recv(min_envs=self.batch)
            v.send(actions[ids], ids)
            done += len(ids)
        elapsed = time.perf_counter() - t0
        v.recv()  # the steps still out: the next reset starts from a quiet vector env
        return done / elapsed

    def close(self) -> None:
        self.venv.close()


def hub_vs(key: str, env_id: str, baseline: tuple, secs: float, workers=(1, 2)) -> dict:
    """8 envs of `env_id` through the hub (`step` at each worker count, and the first-ready
    loop over 2 workers) against `baseline` (name, maker), measured in turns: `key` is the
    best hub rate over the baseline's; `{key}_step` the best of `step` alone."""
    name, make = baseline
    makers = {f"ldm{w}": lambda w=w: E.make_vec(env_id, 8, workers=w) for w in workers}
    makers["ldm2_first_ready"] = lambda: FirstReady(env_id)
    res = interleaved({**makers, name: make}, 3 * secs)
    best = max(v for k, v in res.items() if k.startswith("ldm"))
    step = max(res[f"ldm{w}"] for w in workers)
    return {
        key: round(best / res[name], 2),
        f"{key}_step": round(step / res[name], 2),
        f"{key}_detail": _rounded(res),
    }


def process_vs_inprocess_heavy(secs: float) -> dict:
    """HalfCheetah x 8: simulation dominates; the baseline runs in mujoco's own venv."""
    cheetah = "mujoco/HalfCheetah-v5"
    make = lambda: LibraryBaseline(cheetah, "sync")  # noqa: E731
    return hub_vs("process_vs_inprocess_heavy", cheetah, ("sync", make), secs)


def cartpole_figures(secs: float) -> dict:
    """CartPole x 8, one group measured in turns: AsyncVectorEnv and the hub's process, sandbox
    and Docker backends (1 and 2 workers each). Keys process_vs_async, sandbox_vs_process and
    docker_vs_process (null with the reason when no Docker engine can run), each the best of
    its backend's worker counts over the best of the other."""
    cartpole = "classic-control/CartPole-v1"
    makers = {"async": lambda: gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1")] * 8)}
    backends = {"process": {}, "sandbox": {"sandbox": True}, "docker": {"backend": "docker"}}
    started, no_docker = None, None
    try:  # the engine and the image first: their start-up is not the contender's to pay
        from ldm.envs.transport import docker

        started = docker.ensure_engine()
        docker.ensure_image(E.resolve_env_id(cartpole)[0])
    except Exception as e:  # no engine on this machine: say so in the figures
        no_docker = f"no Docker engine: {e}"
        del backends["docker"]
    for name, kw in backends.items():
        for w in (1, 2):
            makers[f"{name}{w}"] = lambda w=w, kw=kw: E.make_vec(cartpole, 8, workers=w, **kw)
    try:
        res = interleaved(makers, 3 * secs)
    finally:
        if started is not None:
            started.terminate()
            started.wait(timeout=60)
    best = {b: max(v for k, v in res.items() if k.rstrip("12") == b) for b in backends}

    def detail(*families: str) -> dict:
        return _rounded({k: v for k, v in res.items() if k.rstrip("12") in families})

    out = {
        "process_vs_async": round(best["process"] / res["async"], 2),
        "process_vs_async_detail": detail("process", "async"),
        "sandbox_vs_process": round(best["sandbox"] / best["process"], 2),
        "sandbox_vs_process_detail": detail("process", "sandbox"),
    }
    if no_docker is not None:
        return out | {"docker_vs_process": None, "docker_vs_process_detail": no_docker}
    return out | {
        "docker_vs_process": round(best["docker"] / best["process"], 2),
        "docker_vs_process_detail": detail("process", "docker"),
    }


def main() -> None:
    a = args(__doc__)
    secs = 0.25 if a.quick else 10.0
    sections = {
        "cartpole": lambda: cartpole_figures(secs),
        "heavy": lambda: process_vs_inprocess_heavy(secs),
        "catalog": catalog_figures,
        "overhead": lambda: overhead_us(secs, cpu_steps=300 if a.quick else 2000),
        "image": lambda: image_vs_async_shm(secs),
        "refgen": lambda: refgen_steps_vs_dummy(1024 if a.quick else 16384, 1 if a.quick else 2),
    }
    t0 = time.perf_counter()
    out: dict = {}
    seconds, cpu = {}, {}
    for name, run in sections.items():
        t, c = time.perf_counter(), _cpu_of_tree()
        out.update(run())
        seconds[name] = round(time.perf_counter() - t, 1)
        cpu[name] = round(_cpu_of_tree() - c, 1)
    out["section_seconds"] = seconds
    out["section_cpu_seconds"] = cpu
    out["bench_seconds"] = round(time.perf_counter() - t0, 1)
    report(out)


# -- the shared-memory step path ------------------------------------------------------------
def _rounded(d: dict) -> dict:
    return {str(k): round(v) for k, v in d.items()}


def interleaved(makers: dict, seconds: float, rounds: int = 3) -> dict[str, float]:
    """Best steps/s of each vector env (or LibraryBaseline), measured in turns (`rounds` x seconds/rounds each), so
    that a machine shared with other jobs loads every contender alike."""
    venvs = {}
    try:
        for name, make in makers.items():
            venvs[name] = make()
        best = dict.fromkeys(venvs, 0.0)
        for _ in range(rounds):
            for name, v in venvs.items():
                s = seconds / rounds
                r = v.measure(s) if hasattr(v, "measure") else steps_per_s(v, s)
                best[name] = max(best[name], r)
        return best
    finally:
        for v in venvs.values():
            v.close()


def overhead_us(secs: float, cpu_steps: int) -> dict:
    """Per batch step of 8 CartPole envs in one worker: hub minus in-process SyncVectorEnv."""
    cartpole = "classic-control/CartPole-v1"
    res = interleaved(
        {
            "sync": lambda: gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 8),
            "framed": lambda: E.make_vec(cartpole, 8, workers=1, shared_memory=False),
            "shm": lambda: E.make_vec(cartpole, 8, workers=1),
            "shm_blocking": lambda: E.make_vec(cartpole, 8, workers=1, poll_us=0),
        },
        secs,
    )
    per_batch = {k: 8e6 / res[k] - 8e6 / res["sync"] for k in ("framed", "shm", "shm_blocking")}
    return {
        "overhead_us": {k: round(v, 1) for k, v in per_batch.items()},
        "overhead_detail": {f"{k}_steps_per_s": round(v) for k, v in res.items()},
        "cpu_us_per_batch_step": cpu_per_batch_step(cpu_steps),
    }


def _cpu_of_tree() -> float:
    """CPU seconds of this process and of its children that have exited (workers, baselines):
    what a section costs whatever the machine's load (a container's CPU is the engine's)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_per_batch_step(steps: int = 2000) -> dict:
    """CPU time (client + workers, microseconds) per batch step of 8 CartPole envs: a figure
    that a machine shared with other jobs disturbs less than throughput."""
    cartpole = "classic-control/CartPole-v1"
    makers = {
        "sync": (lambda: gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 8), None),
        "async": (
            lambda: gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1")] * 8),
            lambda v: [p.pid for p in v.processes],
        ),
        "framed": (
            lambda: E.make_vec(cartpole, 8, workers=1, shared_memory=False),
            lambda v: [w.conn.proc.pid for w in v._workers],
        ),
        "shm": (
            lambda: E.make_vec(cartpole, 8, workers=1),
            lambda v: [w.conn.proc.pid for w in v._workers],
        ),
        "shm_blocking": (  # no polling: the CPU that polling spends is the difference
            lambda: E.make_vec(cartpole, 8, workers=1, poll_us=0),
            lambda v: [w.conn.proc.pid for w in v._workers],
        ),
    }
    out = {}
    for name, (make, pids_of) in makers.items():
        v = make()
        try:
            v.reset(seed=0)
            a = np.zeros(8, dtype=np.int64)
            for _ in range(100):
                v.step(a)
            pids = pids_of(v) if pids_of else []
            c0, w0 = time.process_time(), _cpu_seconds(pids)
            for _ in range(steps):
                v.step(a)
            cpu = time.process_time() - c0 + _cpu_seconds(pids) - w0
            out[name] = round(cpu / steps * 1e6, 1)
        finally:
            v.close()
    return out


def image_vs_async_shm(secs: float, env_id: str = "ale/ALE/Pong-v5") -> dict:
    """An Atari game x 8 at 64x64: the hub (2 workers: the cores; 8: the baseline's process
    count) against AsyncVectorEnv(shared_memory=True) in the ale venv."""
    make = lambda: LibraryBaseline(env_id, "atari")  # noqa: E731
    try:
        return hub_vs("image_vs_async_shm", env_id, ("async_shm", make), secs, (2, 8))
    except Exception as e:  # the ale venv cannot be built here: say so in the figures
        return {"image_vs_async_shm": None, "image_vs_async_shm_detail": f"{env_id}: {e}"}


def refgen_steps_vs_dummy(budget: int, rounds: int) -> dict:
    """SB3 PPO (`ppo-8env`) on 8 CartPole envs, recorded into a store: hub / DummyVecEnv."""
    import tempfile

    import torch
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ldm.data import Store
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.record import RecordingVecEnv

    torch.set_num_threads(1)
    cand = {c.name: c for c in load_pool()}["ppo-8env"]
    env_id = "classic-control/CartPole-v1"
    obs_spec, act_spec = E.env_spaces(env_id)
    makers = {
        "hub": lambda: E.sb3_vec_env(env_id, 8, workers=1),
        "dummy": lambda: DummyVecEnv([lambda: gym.make("CartPole-v1")] * 8),
    }
    rates = dict.fromkeys(makers, 0.0)
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        for _ in range(rounds):  # in turns, best of them: the machine's load hits both alike
            for name, make in makers.items():
                writer = store.create_run(env_id, "classic-control", obs_spec, act_spec, 8, {})
                venv = RecordingVecEnv(make(), writer)
                try:
                    model = cand.algorithm_class()(
                        "MlpPolicy", venv, seed=0, device="cpu", **cand.constructor_kwargs()
                    )
                    model.set_logger(Logger(folder=None, output_formats=[]))
                    t0 = time.perf_counter()
                    model.learn(total_timesteps=budget)
                    rates[name] = max(rates[name], budget / (time.perf_counter() - t0))
                finally:
                    writer.abort()
                    venv.close()
    return {
        "refgen_steps_vs_dummy": round(rates["hub"] / rates["dummy"], 2),
        "refgen_steps_vs_dummy_detail": {f"{k}_steps_per_s": round(v) for k, v in rates.items()},
    }


if __name__ == "__main__":
    main()
