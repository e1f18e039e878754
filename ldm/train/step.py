"""One optimizer step and one held-out validation: the two places training runs the model.

Imports torch and the `TrainRun` of `setup.py`; never `ldm.eval`.
"""

from __future__ import annotations

import torch

from ldm.errors import TrainError
from ldm.train.setup import TrainRun


def train_step(run: TrainRun) -> dict[str, float]:
    """Accumulate `run.accum` micro-batches, clip, step; returns the step's mean metrics."""
    cfg = run.cfg
    run.opt.zero_grad(set_to_none=True)
    metrics_sum: dict[str, float] = {}
    for micro in range(run.accum):
        batch = next(run.loader).to(run.device)  # (micro_batch, window, ...)
        with run.no_sync(last_micro=micro == run.accum - 1), run.autocast:
            loss, metrics = run.forward(batch, return_loss=True)
            (loss / run.accum).backward()
        if not torch.isfinite(loss):
            envs = sorted({run.loader.env_ids[i] for i in batch.env_index.tolist()})
            raise TrainError(
                f"loss is {float(loss)} at step {run.step} (batch envs: {envs}); last good "
                f"checkpoint: {run.last_good or 'none'}. Lower --lr or enable --grad-clip."
            )
        for k, v in metrics.items():
            metrics_sum[k] = metrics_sum.get(k, 0.0) + float(v) / run.accum
        run.seen += int(batch.loss_mask.sum()) * run.world
    if cfg.grad_clip:
        metrics_sum["grad_norm"] = float(
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        )
    run.opt.step()
    run.sched.step()
    run.step += 1
    return metrics_sum


@torch.no_grad()
def validate(run: TrainRun) -> dict[str, float]:
    """Loss and accuracy per env on the held-out streams (the same windows every time)."""
    cfg, val = run.cfg, run.val
    assert val is not None
    run.model.eval()
    per_env: dict[str, list[dict[str, float]]] = {}
    for i in range(cfg.val_batches):
        batch = val.batch(cfg.micro_batch, cfg.seed + 10_000, 0, i).to(run.device)
        for e, m in run.model.per_env_metrics(batch).items():
            per_env.setdefault(val.env_ids[e], []).append(m)
    run.model.train()
    values = {}
    for env, ms in per_env.items():
        for k in ("loss", "accuracy"):
            values[f"val/{k}/{env}"] = sum(m[k] for m in ms) / len(ms)
    if values:
        values["val/accuracy"] = sum(
            v for k, v in values.items() if k.startswith("val/accuracy/")
        ) / len(per_env)
    return values
