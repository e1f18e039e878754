"""Environment hub throughput: the isolated process backend against Gymnasium's vector envs.

Keys: process_vs_async (CartPole, 8 envs: ldm process backend / AsyncVectorEnv),
process_vs_inprocess_heavy (HalfCheetah, 8 envs: ldm process backend / in-process SyncVectorEnv).
"""

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, rate, report  # noqa: E402

import ldm.envs as E  # noqa: E402


def steps_per_s(venv, seconds: float, n: int = 8) -> float:
    venv.reset(seed=0)
    space = venv.single_action_space
    actions = np.stack([space.sample() for _ in range(n)])

    def chunk() -> int:
        for _ in range(50):
            venv.step(actions)
        return 50 * n

    return rate(chunk, seconds)


def main() -> None:
    a = args(__doc__)
    secs = 3.0 if a.quick else 10.0
    out = {}
    for key, env_id, gym_id, baseline in (
        ("process_vs_async", "classic-control/CartPole-v1", "CartPole-v1", "async"),
        ("process_vs_inprocess_heavy", "mujoco/HalfCheetah-v5", "HalfCheetah-v5", "sync"),
    ):
        results = {}
        for workers in (1, 2):
            v = E.make_vec(env_id, 8, workers=workers)
            results[workers] = steps_per_s(v, secs)
            v.close()
        cls = gym.vector.AsyncVectorEnv if baseline == "async" else gym.vector.SyncVectorEnv
        b = cls([lambda gid=gym_id: gym.make(gid)] * 8)
        base = steps_per_s(b, secs)
        b.close()
        best = max(results, key=results.get)
        out[key] = round(results[best] / base, 2)
        out[f"{key}_detail"] = {
            "ldm_steps_per_s": {str(k): round(v) for k, v in results.items()},
            f"{baseline}_steps_per_s": round(base),
            "ldm_workers": best,
        }
    report(out)


if __name__ == "__main__":
    main()
