"""Training: transitions/s of the full loop (loader + step) against the bare model step.

Key: loop_vs_step (goal >= 0.9), tiny preset on this CPU.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402
from data import ACT, VEC, record  # noqa: E402

from ldm.data import Store, WindowSampler  # noqa: E402
from ldm.model import LDMPolicy, preset  # noqa: E402
from ldm.train import TrainConfig, train  # noqa: E402


def main() -> None:
    a = args(__doc__)
    steps = 30 if a.quick else 150
    L, B = 128, 16
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "store")
        record(store, "bench/Vec-v0", VEC, ACT, 4000)
        # bare step: the same model and batch shape, batch prepared in advance
        model = LDMPolicy(preset("ldm-tiny", context=L))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        batch = WindowSampler(store, L).batch(B, 0, 0, 0).to()
        tokens = int(batch.loss_mask.sum())
        for _ in range(3):
            loss, _ = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss, _ = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        bare = steps * tokens / (time.perf_counter() - t0)
        cfg = TrainConfig(
            store=str(store.path),
            out=str(Path(d) / "run"),
            preset="ldm-tiny",
            model={"context": L},
            window=L,
            steps=steps + 5,
            batch_size=B,
            micro_batch=B,
            lr=1e-3,
            grad_clip=None,
            val_every=0,
            checkpoint_every=10_000,
            log_every=1,
            num_workers=1,
        )
        train(cfg, progress=False)
        rows = [json.loads(x) for x in (Path(d) / "run" / "metrics.jsonl").read_text().splitlines()]
        # steady state: from step 5 (loader started, model warm) to the end
        rows = [r for r in rows if "transitions" in r and r["step"] >= 5]
        first, last = rows[0], rows[-1]
        loop = (last["transitions"] - first["transitions"]) / (last["time"] - first["time"])
    report(
        {
            "loop_vs_step": round(loop / bare, 3),
            "loop_transitions_per_s": round(loop),
            "step_transitions_per_s": round(bare),
            "window": L,
            "batch": B,
        }
    )


if __name__ == "__main__":
    main()
