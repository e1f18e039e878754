"""Setting a training process up: ranks, data, model, optimizer, and resuming.

`setup(cfg)` returns a `TrainRun`, everything one process holds while it trains; `step.py`
advances it and `loop.py` saves it. Checks that need the store or the number of ranks are
made here, before any step (the others are in `TrainConfig.__post_init__`). Imports torch,
`ldm.data` and `ldm.model`; never `ldm.eval` (evaluation is passed in by the caller).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ldm.data import Store, WindowLoader, WindowSampler
from ldm.errors import StoreError, TrainError
from ldm.model import LDMConfig, LDMPolicy
from ldm.train.checkpoint import check_same_model, latest_checkpoint, load_state, set_rng_state
from ldm.train.config import TrainConfig


@dataclass
class TrainRun:
    """One training process: what `setup` built and where the loop stands."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    store: Store
    loader: WindowLoader
    """This rank's window stream (resumable)."""
    val: WindowSampler | None
    """Held-out windows (None when val_every is 0)."""
    model: LDMPolicy
    ddp: Any
    """The model, wrapped by DistributedDataParallel when there are several ranks."""
    forward: Any
    """What the step calls: `ddp`, compiled by torch.compile if asked."""
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    accum: int
    """Micro-batches per optimizer step on this rank."""
    autocast: Any
    step: int = 0
    seen: int = 0
    """Transitions trained on, over all ranks."""
    last_good: Path | None = None
    """The newest checkpoint written (or resumed from)."""

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, validates, evaluates and writes."""
        return self.rank == 0

    def no_sync(self, last_micro: bool) -> Any:
        """DDP's gradient all-reduce runs only on the last micro-batch of a step."""
        if last_micro or self.world == 1:
            return contextlib.nullcontext()
        return self.ddp.no_sync()


def setup(cfg: TrainConfig) -> TrainRun:
    """Everything a training process needs, resumed from the newest checkpoint if any."""
    rank, world, local = _dist()
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model_cfg = cfg.model_config()
    window = cfg.window or model_cfg.context
    per_step = cfg.micro_batch * world
    if cfg.batch_size % per_step:
        raise TrainError(
            f"batch_size {cfg.batch_size} is not a multiple of micro_batch x ranks = {per_step}; "
            "change one of them"
        )
    store, loader, val = _open_data(cfg, window, rank, world)
    torch.manual_seed(cfg.seed)
    model = _build_model(cfg, model_cfg, window, store, loader).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapters
    opt = torch.optim.AdamW(
        trainable, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    run = TrainRun(
        cfg,
        rank,
        world,
        device,
        store,
        loader,
        val,
        model,
        ddp=model,
        forward=model,
        opt=opt,
        sched=torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg)),
        accum=cfg.batch_size // per_step,
        autocast=torch.autocast(device.type, dtype=torch.bfloat16)
        if cfg.dtype == "bf16"
        else contextlib.nullcontext(),
    )
    if cfg.resume:
        _resume(run, model_cfg)
    if world > 1:
        # batches differ in modality (no image, no categorical dims...): some parameters go unused
        run.ddp = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[local] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    run.forward = torch.compile(run.ddp) if cfg.compile else run.ddp
    return run


def _dist() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; initialises the group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """The learning-rate factor of each step: linear warm-up, then constant or cosine to 10%."""

    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "cosine":
            t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return 1.0

    return f


def _open_data(
    cfg: TrainConfig, window: int, rank: int, world: int
) -> tuple[Store, WindowLoader, WindowSampler | None]:
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
            envs=cfg.envs,
            holdout="train",
            on_bad_run=cfg.on_bad_run,
            exclude=cfg.exclude,
            episodes=cfg.episodes,
        )
        val = (
            WindowSampler(
                store,
                window,
                cfg.weighting,
                envs=cfg.envs,
                holdout="val",
                exclude=cfg.exclude,
                on_bad_run=cfg.on_bad_run,
            )
            if cfg.val_every
            else None
        )
    except StoreError as e:
        raise TrainError(f"cannot train on {cfg.store}: {e}") from None
    missing = sorted(set(cfg.envs or ()) - set(loader.env_ids))
    if missing:
        raise TrainError(
            f"store {cfg.store} has no curated runs of {missing}; generate their references "
            "with `ldm refgen all`, or leave them out of --envs"
        )
    longest = max(s.length for s in loader.sampler.streams)
    # K episodes may be shorter than a window: left-padded, as at the start of a stream
    if longest < window and cfg.episodes is None:
        raise TrainError(
            f"the store's longest stream has {longest} transitions, fewer than the window {window}; "
            "use a smaller --window or record longer runs"
        )
    return store, loader, val


def _build_model(
    cfg: TrainConfig, model_cfg: LDMConfig, window: int, store: Store, loader: WindowLoader
) -> LDMPolicy:
    from ldm.data.fingerprint import store_fingerprint
    from ldm.model.card import TrainingFacts

    model = LDMPolicy(model_cfg)
    tuning = _start_from(cfg, model, tuple(loader.env_ids)) if cfg.init_from else None
    model.training_facts = TrainingFacts(  # the model card's "trained on" (ldm/model/card.py)
        cfg.preset,
        tuple(loader.env_ids),
        str(cfg.store),
        store_fingerprint(store),
        cfg.steps,
        cfg.batch_size,
        window,
        tuning,
    )
    return model


def _start_from(cfg: TrainConfig, model: LDMPolicy, envs: tuple[str, ...]) -> Any:
    """Load the base checkpoint's weights into `model` (LoRA adapters added when asked);
    returns the card's TuningFacts."""
    from safetensors.torch import load_file

    from ldm.model.card import TuningFacts, facts_from_json
    from ldm.train.lora import add_lora

    base = Path(str(cfg.init_from))
    if not (base / "model.safetensors").exists():
        raise TrainError(
            f"init_from {base} is not a checkpoint (no model.safetensors); pass a folder "
            "written by `ldm train` (e.g. runs/train/final)"
        )
    try:
        check_same_model(base, model.config.to_dict())
    except TrainError as e:
        raise TrainError(
            f"init_from: {e}. `ldm finetune` takes the model config from the checkpoint"
        ) from None
    weights = load_file(str(base / "model.safetensors"))
    if cfg.init_parts:  # the other parts keep their new weights (an ablation of what is shared)
        weights = {k: v for k, v in weights.items() if k.split(".", 1)[0] in cfg.init_parts}
    unexpected = model.load_state_dict(weights, strict=not cfg.init_parts).unexpected_keys
    if unexpected:
        raise TrainError(f"init_from {base}: weights the model lacks: {sorted(unexpected)[:5]}")
    if cfg.lora:
        add_lora(model, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)
    base_training, _ = facts_from_json(json.loads((base / "config.json").read_text()).get("card"))
    return TuningFacts(
        str(base),
        envs,
        cfg.episodes,
        "lora" if cfg.lora else "full",
        cfg.lora_rank if cfg.lora else None,
        cfg.lora_alpha if cfg.lora else None,
        base_training.envs if base_training else (),
        tuple(cfg.init_parts),
    )


def _resume(run: TrainRun, model_cfg: LDMConfig) -> None:
    """Restore model, optimizer, scheduler, loader and RNG from the newest checkpoint."""
    ckpt = latest_checkpoint(run.out)
    if ckpt is None:
        return
    check_same_model(ckpt, model_cfg.to_dict())
    state = load_state(ckpt)
    from safetensors.torch import load_file

    run.model.load_state_dict(load_file(str(ckpt / "model.safetensors"), device=str(run.device)))
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    loaders = state["loader"]  # one per rank (a dict in checkpoints of single-process runs)
    run.loader.load_state_dict(loaders[run.rank] if isinstance(loaders, list) else loaders)
    set_rng_state(state["rng"])
    run.step, run.seen, run.last_good = state["step"], state["transitions"], ckpt
