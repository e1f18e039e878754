"""The training loop, top to bottom: one process on CPU, or one per GPU under torchrun (DDP).

Under `torchrun --nproc_per_node=K` the same command works: the global batch is split over
ranks (each draws its own window stream), gradients are averaged by DDP, only rank 0 writes
logs and checkpoints. Resuming restores model, optimizer, scheduler, RNG and loader state, so
an interrupted and resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ldm.errors import StoreError, TrainError
from ldm.train.checkpoint import (
    check_same_model,
    latest_checkpoint,
    load_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ldm.train.config import TrainConfig


def _dist() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; initialises the group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "cosine":
            t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return 1.0

    return f


class _Stop:
    """SIGTERM/SIGINT set a flag; the loop checkpoints and exits at the next step."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume, or return at once if finished); returns the final checkpoint dir."""
    from ldm.data import Store, WindowLoader, WindowSampler
    from ldm.data.fingerprint import store_fingerprint
    from ldm.model import LDMPolicy, preset
    from ldm.model.card import TrainingFacts

    out = Path(cfg.out)
    final = out / "final"
    done = out / "done.json"
    if (
        (final / "model.safetensors").exists()
        and done.exists()
        and json.loads(done.read_text())["step"] >= cfg.steps
    ):
        return final
    rank, world, local = _dist()
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model_cfg = preset(cfg.preset, **cfg.model)
    window = cfg.window or model_cfg.context
    if window > model_cfg.context:
        raise TrainError(f"window {window} is longer than the preset's context {model_cfg.context}")
    per_step = cfg.micro_batch * world
    if cfg.batch_size % per_step:
        raise TrainError(
            f"batch_size {cfg.batch_size} is not a multiple of micro_batch x ranks = {per_step}; "
            "change one of them"
        )
    accum = cfg.batch_size // per_step
    if not cfg.store or not Path(cfg.store).exists():
        raise TrainError(f"store {cfg.store!r} does not exist; generate one with `ldm refgen all`")
    store = Store(cfg.store, create=False)
    if not store.runs():
        raise TrainError(f"store {cfg.store} is empty; record runs with `ldm refgen all`")
    try:
        loader = WindowLoader(
            store,
            window,
            cfg.micro_batch,
            cfg.seed,
            rank,
            world,
            cfg.weighting,
            num_workers=cfg.num_workers,
            holdout="train",
        )
        val = WindowSampler(store, window, cfg.weighting, holdout="val") if cfg.val_every else None
    except StoreError as e:
        raise TrainError(f"cannot train on {cfg.store}: {e}") from None
    longest = max(s.length for s in loader.sampler.streams)
    if longest < window:
        raise TrainError(
            f"the store's longest stream has {longest} transitions, fewer than the window {window}; "
            "use a smaller --window or record longer runs"
        )

    torch.manual_seed(cfg.seed)
    model = LDMPolicy(model_cfg).to(device)
    model.training_facts = TrainingFacts(  # the model card's "trained on" (ldm/model/card.py)
        cfg.preset,
        tuple(loader.env_ids),
        str(cfg.store),
        store_fingerprint(store),
        cfg.steps,
        cfg.batch_size,
        window,
    )
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    step, seen = 0, 0
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is not None:
        check_same_model(ckpt, model_cfg.to_dict())
        state = load_state(ckpt)
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(ckpt / "model.safetensors"), device=str(device)))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        loader.load_state_dict(
            state["loader"][rank] if isinstance(state["loader"], list) else state["loader"]
        )
        set_rng_state(state["rng"])
        step, seen = state["step"], state["transitions"]
    ddp = model
    if world > 1:
        # batches differ in modality (no image, no categorical dims...): some parameters go unused
        ddp = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[local] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    fwd = torch.compile(ddp) if cfg.compile else ddp
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if cfg.dtype == "bf16"
        else contextlib.nullcontext()
    )

    log = _Logger(out, rank == 0, cfg, loader.env_ids)
    stop = _Stop()
    last_good = ckpt
    from tqdm import tqdm

    bar = tqdm(
        total=cfg.steps, initial=step, desc="train", disable=not progress or rank != 0, unit="step"
    )
    t0, seen0 = time.time(), seen

    def checkpoint() -> Path | None:
        nonlocal last_good
        loaders = _gather(loader.state_dict(), world)
        if rank == 0:
            state = {
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": rng_state(),
                "loader": loaders,
                "step": step,
                "transitions": seen,
            }
            last_good = save_checkpoint(out, step, model, state, asdict(cfg), cfg.keep_checkpoints)
        return last_good

    try:
        model.train()
        while step < cfg.steps and not stop.requested:
            opt.zero_grad(set_to_none=True)
            metrics_sum: dict[str, float] = {}
            for micro in range(accum):
                batch = next(loader).to(device)
                sync = micro == accum - 1 or world == 1
                ctx = contextlib.nullcontext() if sync else ddp.no_sync()
                with ctx, autocast:
                    loss, metrics = fwd(batch, return_loss=True)
                    (loss / accum).backward()
                if not torch.isfinite(loss):
                    envs = sorted({loader.env_ids[i] for i in batch.env_index.tolist()})
                    raise TrainError(
                        f"loss is {float(loss)} at step {step} (batch envs: {envs}); last good checkpoint: "
                        f"{last_good or 'none'}. Lower --lr or enable --grad-clip."
                    )
                for k, v in metrics.items():
                    metrics_sum[k] = metrics_sum.get(k, 0.0) + float(v) / accum
                seen += int(batch.loss_mask.sum()) * world
            if cfg.grad_clip:
                metrics_sum["grad_norm"] = float(
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                )
            opt.step()
            sched.step()
            step += 1
            bar.update()
            if step % cfg.log_every == 0 or step == cfg.steps:
                rate = (seen - seen0) / max(1e-9, time.time() - t0)
                log.scalars(
                    step,
                    {
                        **{f"train/{k}": v for k, v in metrics_sum.items()},
                        "lr": sched.get_last_lr()[0],
                        "transitions_per_s": rate,
                        "transitions": seen,
                    },
                )
                bar.set_postfix_str(
                    f"loss {metrics_sum['loss']:.3f} acc {metrics_sum['accuracy']:.3f} {rate:,.0f} tr/s"
                )
            if val is not None and rank == 0 and step % cfg.val_every == 0:
                log.validation(step, model, val, cfg, device)
            if cfg.eval_every and rank == 0 and step % cfg.eval_every == 0:
                log.evaluation(step, model, cfg, store)
            if step % cfg.checkpoint_every == 0:
                checkpoint()
        checkpoint()
        if stop.requested:
            raise KeyboardInterrupt(
                f"training interrupted at step {step}; checkpoint {last_good}; rerun to resume"
            )
        # every rank's parameters must be identical under DDP: recorded, and checked
        hashes = _gather(_param_hash(model), world)
        if len(set(hashes)) > 1:
            raise TrainError(f"ranks diverged: parameter hashes {hashes}")
        if rank == 0:
            model.save_pretrained(final)
            (out / "done.json").write_text(
                json.dumps({"step": step, "transitions": seen, "rank_param_hashes": hashes})
            )
    finally:
        bar.close()
        stop.restore()
        log.close()
    return final


def _param_hash(model: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _gather(value: Any, world: int) -> list[Any]:
    if world == 1:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * world
    dist.all_gather_object(values, value)
    return values


class _Logger:
    """TensorBoard + metrics.jsonl on rank 0 only."""

    def __init__(self, out: Path, active: bool, cfg: TrainConfig, env_ids: list[str]) -> None:
        self.active, self.env_ids = active, env_ids
        self.tb = None
        if active:
            out.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "logs"))
            self.jsonl = open(out / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.active:
            return
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)
        self.jsonl.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
        self.jsonl.flush()

    @torch.no_grad()
    def validation(
        self, step: int, model: Any, val: Any, cfg: TrainConfig, device: torch.device
    ) -> None:
        model.eval()
        per_env: dict[str, list[dict[str, float]]] = {}
        for i in range(cfg.val_batches):
            batch = val.batch(cfg.micro_batch, cfg.seed + 10_000, 0, i).to(device)
            for e, m in model.per_env_metrics(batch).items():
                per_env.setdefault(val.env_ids[e], []).append(m)
        model.train()
        values = {}
        for env, ms in per_env.items():
            for k in ("loss", "accuracy"):
                values[f"val/{k}/{env}"] = sum(m[k] for m in ms) / len(ms)
        if values:
            values["val/accuracy"] = sum(
                v for k, v in values.items() if k.startswith("val/accuracy/")
            ) / len(per_env)
        self.scalars(step, values)

    def evaluation(self, step: int, model: Any, cfg: TrainConfig, store: Any) -> None:
        try:
            from ldm.eval import EvalConfig, evaluate
        except ImportError:
            return
        model.eval()
        res = evaluate(
            model, None, store, EvalConfig(rollouts=1, episodes=cfg.eval_episodes), progress=False
        )
        model.train()
        values = {
            f"eval/score/{r['env_id']}": r["normalised_score"]
            for r in res["envs"]
            if r.get("normalised_score") is not None
        }
        if "summary" in res:
            values["eval/share_at_80"] = res["summary"]["share_at_80"]
        self.scalars(step, values)

    def close(self) -> None:
        if self.active and self.tb is not None:
            self.tb.close()
            self.jsonl.close()
