"""Evaluation: 16 env slots advanced together (one batched model call per step) against the
same 16 evaluated one by one.

Key: batched_speedup (env steps/s batched / one by one; goal >= 5).
"""

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402

from ldm.data import Store  # noqa: E402
from ldm.eval import EvalConfig, evaluate  # noqa: E402
from ldm.model import LDMPolicy, preset  # noqa: E402

ENVS = [
    "classic-control/CartPole-v1",
    "classic-control/Acrobot-v1",
    "classic-control/Pendulum-v1",
    "classic-control/MountainCarContinuous-v0",
]


def main() -> None:
    a = args(__doc__)
    torch.manual_seed(0)
    policy = LDMPolicy(preset("ldm-tiny", context=256)).eval()
    max_steps = 60 if a.quick else 300
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        cfg = EvalConfig(
            rollouts=4, episodes=1000, max_steps=max_steps
        )  # 4 envs x 4 rollouts = 16 slots
        t0 = time.perf_counter()
        res = evaluate(policy, ENVS, store, cfg, progress=False)
        batched_time = time.perf_counter() - t0
        batched_env_steps = sum(1 for _ in range(res.steps)) * 16
        batched_calls = res.model_calls
        one = EvalConfig(rollouts=1, episodes=1000, max_steps=max_steps)
        t0 = time.perf_counter()
        calls = 0
        for env in ENVS:
            for _ in range(4):
                r = evaluate(policy, [env], store, one, progress=False)
                calls += r.model_calls
        single_time = time.perf_counter() - t0
        single_env_steps = calls  # one env step per model call
    report(
        {
            "batched_speedup": round(
                (batched_env_steps / batched_time) / (single_env_steps / single_time), 2
            ),
            "batched_env_steps_per_s": round(batched_env_steps / batched_time),
            "single_env_steps_per_s": round(single_env_steps / single_time),
            "batched_model_calls_per_s": round(batched_calls / batched_time, 1),
            "single_model_calls_per_s": round(calls / single_time, 1),
            "slots": 16,
        }
    )


if __name__ == "__main__":
    main()
