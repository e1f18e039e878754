"""The training loop, top to bottom: one process on CPU, or one per GPU under torchrun (DDP).

Under `torchrun --nproc_per_node=K` the same command works: the global batch is split over
ranks (each draws its own window stream), gradients are averaged by DDP, only rank 0 writes
logs and checkpoints. Resuming restores model, optimizer, scheduler, RNG and loader state, so
an interrupted and resumed run equals an uninterrupted one.

Periodic evaluation in the environments is passed in as `evaluate` (ldm/pipeline builds it
from ldm.eval): this part never imports ldm.eval, which sits after it in the import order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ldm.atomic import write_json_atomic
from ldm.disk import on_full_disk
from ldm.errors import TrainError
from ldm.train.checkpoint import param_bytes, rng_state, save_checkpoint
from ldm.train.config import TrainConfig
from ldm.train.metrics import MetricsLog
from ldm.train.setup import TrainRun, setup
from ldm.train.step import train_step, validate

#: `evaluate(model, store) -> scalars to log` (e.g. {"eval/share_at_80": 0.5}); the loop puts
#: the model in eval mode around the call and calls it on rank 0 only.
EvalCallback = Callable[[Any, Any], dict[str, float]]


def train(cfg: TrainConfig, progress: bool = True, evaluate: EvalCallback | None = None) -> Path:
    """Train (or resume, or return at once if finished); returns the final checkpoint dir."""
    final = Path(cfg.out) / "final"
    if is_finished(cfg):
        return final
    if cfg.eval_every and evaluate is None:
        raise TrainError(
            f"eval_every is {cfg.eval_every} but no evaluation was passed to train(); "
            "run through `ldm train` / `ldm run`, pass evaluate=..., or set eval_every = 0"
        )
    run = setup(cfg)
    log = MetricsLog(run.out, run.is_main)
    stop = _Stop()
    from tqdm import tqdm

    hidden = not progress or not run.is_main
    bar = tqdm(total=cfg.steps, initial=run.step, desc="train", unit="step", disable=hidden)
    t0, seen0 = time.time(), run.seen
    try:
        run.model.train()
        told: set[str] = set()
        while run.step < cfg.steps and not stop.requested:
            metrics = train_step(run)
            bar.update()
            told = _tell_dropped(run, told, bar)
            if run.step % cfg.log_every == 0 or run.step == cfg.steps:
                rate = (run.seen - seen0) / max(1e-9, time.time() - t0)
                log.scalars(run.step, _train_scalars(run, metrics, rate))
                bar.set_postfix_str(
                    f"loss {metrics['loss']:.3f} acc {metrics['accuracy']:.3f} {rate:,.0f} tr/s"
                )
            # the last step too: the held-out accuracy set beside the scores is the final model's
            last = run.step == cfg.steps
            if run.val is not None and run.is_main and (run.step % cfg.val_every == 0 or last):
                log.scalars(run.step, validate(run))
            if evaluate and cfg.eval_every and run.is_main and run.step % cfg.eval_every == 0:
                log.scalars(run.step, _evaluate(run, evaluate))
            if run.step % cfg.checkpoint_every == 0:
                save(run)
        save(run)
        if stop.requested:
            raise KeyboardInterrupt(
                f"training interrupted at step {run.step}; checkpoint {run.last_good}; "
                "rerun to resume"
            )
        finish(run, final)
    finally:
        bar.close()
        stop.restore()
        log.close()
    return final


def is_finished(cfg: TrainConfig) -> bool:
    """OUT/final holds a model trained for at least `cfg.steps` steps."""
    out = Path(cfg.out)
    done = out / "done.json"
    return (
        (out / "final" / "model.safetensors").exists()
        and done.exists()
        and json.loads(done.read_text())["step"] >= cfg.steps
    )


def save(run: TrainRun) -> Path | None:
    """Checkpoint the run (every rank's loader state; rank 0 writes); returns the newest."""
    loaders = gather(run.loader.state_dict(), run.world)
    if run.is_main:
        state = {
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(),
            "rng": rng_state(),
            "loader": loaders,
            "step": run.step,
            "transitions": run.seen,
        }
        run.last_good = save_checkpoint(
            run.out, run.step, run.model, state, asdict(run.cfg), run.cfg.keep_checkpoints
        )
    return run.last_good


def finish(run: TrainRun, final: Path) -> None:
    """Check that every rank holds the same parameters, then write OUT/final and done.json."""
    hashes = gather(param_hash(run.model), run.world)
    if len(set(hashes)) > 1:
        raise TrainError(f"ranks diverged: parameter hashes {hashes}")
    if run.is_main:
        # into a temporary dir, then renamed: a model in OUT/final is always a whole one
        if run.cfg.lora:  # the final model is an ordinary checkpoint: adapters folded in
            from ldm.train.lora import merge_lora

            merge_lora(run.model)
        tmp = run.out / f".tmp-final-{os.getpid()}"
        kept = f"the last checkpoint {run.last_good} is kept: the rerun writes final from it"
        with on_full_disk(run.out, param_bytes(run.model), "final", kept):
            try:
                run.model.save_pretrained(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        done = {"step": run.step, "transitions": run.seen, "rank_param_hashes": hashes}
        write_json_atomic(run.out / "done.json", done)


def _dropped(run: TrainRun) -> dict[str, str]:
    """Damaged runs this rank dropped (on_bad_run="drop"), from training and validation."""
    return {**(run.val.dropped if run.val is not None else {}), **run.loader.dropped}


def _tell_dropped(run: TrainRun, told: set[str], bar: Any) -> set[str]:
    """Say once, on rank 0, each run dropped since the last call; returns the runs told."""
    dropped = _dropped(run)
    for run_id in sorted(set(dropped) - told):
        if run.is_main:
            bar.write(
                f"dropped damaged run {run_id} at step {run.step}: {dropped[run_id]}",
                file=sys.stderr,
            )
    return set(dropped)


def _train_scalars(run: TrainRun, metrics: dict[str, float], rate: float) -> dict[str, float]:
    return {
        **{f"train/{k}": v for k, v in metrics.items()},
        "lr": run.sched.get_last_lr()[0],
        "transitions_per_s": rate,
        "transitions": run.seen,
        "data/dropped_runs": len(_dropped(run)),
    }


def _evaluate(run: TrainRun, evaluate: EvalCallback) -> dict[str, float]:
    run.model.eval()
    try:
        return evaluate(run.model, run.store)
    finally:
        run.model.train()


def param_hash(model: Any) -> str:
    """sha256 of every parameter, in order (equal on every rank of a healthy DDP run)."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def gather(value: Any, world: int) -> list[Any]:
    """`value` of every rank, in rank order (`[value]` in a single process)."""
    if world == 1:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * world
    dist.all_gather_object(values, value)
    return values


class _Stop:
    """SIGTERM/SIGINT set a flag; the loop checkpoints and exits at the next step."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[Any, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
