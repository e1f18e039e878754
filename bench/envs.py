"""Environment hub throughput: the isolated process backend against Gymnasium's vector envs.

Keys: process_vs_async (CartPole, 8 envs: ldm process backend / AsyncVectorEnv),
process_vs_inprocess_heavy (HalfCheetah, 8 envs: ldm process backend / in-process
SyncVectorEnv, the baseline run inside the mujoco library's own venv, where mujoco lives),
docker_vs_process (CartPole, 8 envs: docker backend / process backend; null with the reason
when no Docker engine can run); and the catalog's size (`catalog_figures`): libraries, envs,
envs_checked (envs whose check result discovery recorded) and discover_seconds_median (time of
`ldm envs discover` per library, venv build included, as recorded by the last discovery of
each library that records one).
"""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, rate, report  # noqa: E402

import ldm.envs as E  # noqa: E402
from ldm.envs.venvs import ensure_venv  # noqa: E402

# the in-process baseline for a library that lives in its own venv: measured there
BASELINE = """
import json, sys, time
import gymnasium as gym
import numpy as np
gid, seconds, kind = sys.argv[1], float(sys.argv[2]), sys.argv[3]
cls = gym.vector.AsyncVectorEnv if kind == "async" else gym.vector.SyncVectorEnv
v = cls([lambda: gym.make(gid)] * 8)
v.reset(seed=0)
a = np.stack([v.single_action_space.sample() for _ in range(8)])
for _ in range(50):
    v.step(a)
done, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds:
    for _ in range(50):
        v.step(a)
    done += 400
print(json.dumps(done / (time.perf_counter() - t0)))
v.close()
"""


def steps_per_s(venv, seconds: float, n: int = 8) -> float:
    venv.reset(seed=0)
    space = venv.single_action_space
    actions = np.stack([space.sample() for _ in range(n)])

    def chunk() -> int:
        for _ in range(50):
            venv.step(actions)
        return 50 * n

    return rate(chunk, seconds)


def baseline_in_library_venv(env_id: str, seconds: float, kind: str) -> float:
    spec, rid = E.resolve_env_id(env_id)
    py = ensure_venv(spec)
    out = subprocess.run(
        [str(py), "-c", BASELINE, rid, str(seconds), kind],
        capture_output=True,
        text=True,
        check=True,
        env={"MUJOCO_GL": "egl", "PATH": "/usr/bin:/bin"},
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def best_of_workers(env_id: str, seconds: float, backend: str = "process") -> dict[int, float]:
    results = {}
    for workers in (1, 2):
        v = E.make_vec(env_id, 8, backend=backend, workers=workers)
        try:
            results[workers] = steps_per_s(v, seconds)
        finally:
            v.close()
    return results


def catalog_figures() -> dict:
    """The catalog's size and how long discovery took per library (read, not re-run)."""
    from statistics import median

    from ldm.envs.catalog import load_catalog
    from ldm.envs.registry import list_envs

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


def main() -> None:
    a = args(__doc__)
    secs = 3.0 if a.quick else 10.0
    out = {}
    # light env: the hub's round trips against AsyncVectorEnv's (both in this process's venv)
    ldm_light = best_of_workers("classic-control/CartPole-v1", secs)
    b = gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1")] * 8)
    base = steps_per_s(b, secs)
    b.close()
    best = max(ldm_light, key=ldm_light.get)
    out["process_vs_async"] = round(ldm_light[best] / base, 2)
    out["process_vs_async_detail"] = {
        "ldm_steps_per_s": {str(k): round(v) for k, v in ldm_light.items()},
        "async_steps_per_s": round(base),
    }
    # heavy env: simulation dominates; the baseline runs in mujoco's own venv
    heavy = best_of_workers("mujoco/HalfCheetah-v5", secs)
    base = baseline_in_library_venv("mujoco/HalfCheetah-v5", secs, "sync")
    best = max(heavy, key=heavy.get)
    out["process_vs_inprocess_heavy"] = round(heavy[best] / base, 2)
    out["process_vs_inprocess_heavy_detail"] = {
        "ldm_steps_per_s": {str(k): round(v) for k, v in heavy.items()},
        "sync_steps_per_s": round(base),
    }
    # the container backend against the process backend (same env, same workers)
    try:
        from ldm.envs.docker import ensure_engine

        started = ensure_engine()
        try:
            dock = best_of_workers("classic-control/CartPole-v1", secs, backend="docker")
        finally:
            if started is not None:
                started.terminate()
                started.wait(timeout=60)
        best = max(dock, key=dock.get)
        out["docker_vs_process"] = round(dock[best] / max(ldm_light.values()), 2)
        out["docker_vs_process_detail"] = {
            "docker_steps_per_s": {str(k): round(v) for k, v in dock.items()}
        }
    except Exception as e:  # no engine on this machine: say so in the figures
        out["docker_vs_process"] = None
        out["docker_vs_process_detail"] = f"no Docker engine: {e}"
    out.update(catalog_figures())
    report(out)


if __name__ == "__main__":
    main()
