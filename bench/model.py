"""Model costs on this CPU: training step vs bare backbone, FLOP/s vs matmul, KV-cache speedup.

Keys: train_step_vs_backbone (time ratio, goal <= 1.3), flops_vs_matmul,
kv_cache_speedup (goal >= 20 at context 2048; --quick uses a shorter context, see `context`),
batch16_steps_per_s.
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402

from ldm import tokenizer as tk  # noqa: E402
from ldm.model import LDMPolicy, preset  # noqa: E402
from ldm.spaces import SpaceSpec  # noqa: E402

OBS = SpaceSpec("continuous", (17,), low=(-10.0,) * 17, high=(10.0,) * 17)
ACT = SpaceSpec("continuous", (6,), low=(-1.0,) * 6, high=(1.0,) * 6)


def timeit(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def training_costs(name: str, T: int, B: int, ctx: int, reps: int) -> dict:
    """A full training step against the bare backbone's, and its FLOP/s against a matmul's."""
    torch.manual_seed(0)
    model = LDMPolicy(preset(name, context=max(T, ctx)))
    rng = np.random.default_rng(0)
    windows = [
        tk.tokenize_window(
            OBS,
            ACT,
            rng.normal(size=(T, 17)),
            rng.uniform(-1, 1, (T, 6)),
            rng.normal(size=T),
            np.zeros(T),
            np.zeros(T),
        )
        for _ in range(B)
    ]
    batch = tk.collate(windows).to()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def full_step():
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    backbone = model.backbone
    embeds = torch.randn(B, T, model.config.hidden)  # (B, T, C)
    opt_b = torch.optim.AdamW(backbone.parameters(), lr=1e-4)

    def backbone_step():
        out = backbone(inputs_embeds=embeds).last_hidden_state
        loss = out.pow(2).mean()
        opt_b.zero_grad()
        loss.backward()
        opt_b.step()

    t_full, t_back = timeit(full_step, reps), timeit(backbone_step, reps)
    # training FLOPs ~ 6 * params_in_matmuls * tokens + attention
    n_params = sum(p.numel() for p in backbone.parameters())
    flops = 6 * n_params * B * T + 12 * model.config.layers * B * T * T * model.config.hidden
    m = torch.randn(1024, 1024)
    t_mm = timeit(lambda: m @ m, 10)
    mm_flops = 2 * 1024**3 / t_mm
    return {
        "train_step_vs_backbone": round(t_full / t_back, 2),
        "flops_vs_matmul": round(flops / t_full / mm_flops, 3),
        "train_step_s": round(t_full, 4),
        "matmul_gflops": round(mm_flops / 1e9, 1),
    }


@torch.no_grad()
def acting_costs(name: str, ctx: int) -> dict:
    """Per-step latency with the KV cache at a full context vs recomputing the window, and
    steps/s of a 16-env session."""
    policy = LDMPolicy(preset(name, context=ctx)).eval()
    o = np.zeros(17, np.float32)
    n = 5
    session = policy.start_session([OBS], [ACT])
    for _ in range(ctx - 8):
        session.act([o])
        session.record([0.0], [False], [False])
    t0 = time.perf_counter()
    for _ in range(n):
        session.act([o])
        session.record([0.0], [False], [False])
    t_cached = (time.perf_counter() - t0) / n
    zeros = [np.zeros((ctx, 17)), np.zeros((ctx, 6)), np.zeros(ctx), np.zeros(ctx), np.zeros(ctx)]
    wb = tk.collate([tk.tokenize_window(OBS, ACT, *zeros)]).to()
    t_full_ctx = timeit(lambda: policy(wb), 2)
    s16 = policy.start_session([OBS] * 16, [ACT] * 16)
    t0 = time.perf_counter()
    steps = 64
    for _ in range(steps):
        s16.act([o] * 16)
        s16.record(np.zeros(16), np.zeros(16, bool), np.zeros(16, bool))
    b16 = steps / (time.perf_counter() - t0)
    return {
        "context": ctx,
        "kv_cache_speedup": round(t_full_ctx / t_cached, 1),
        "batch16_steps_per_s": round(b16, 1),
    }


def main() -> None:
    a = args(__doc__)
    name, T, B = ("ldm-tiny", 256, 8) if a.quick else ("ldm-32m", 512, 4)
    ctx = 256 if a.quick else 2048
    reps = 3 if a.quick else 5
    report(
        {
            "preset": name,
            "seq_len": T,
            "batch": B,
            **training_costs(name, T, B, ctx, reps),
            **acting_costs(name, ctx),
        }
    )


if __name__ == "__main__":
    main()
