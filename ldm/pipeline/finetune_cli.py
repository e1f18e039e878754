"""`ldm finetune CHECKPOINT --store S --envs ... --episodes K --out DIR [--lora]`.

Fine-tunes a trained LDM on a few envs' first K reference episodes with the training loop of
`ldm train` (checkpoints, exact resume from the newest one in DIR, the final model in
DIR/final, whose model card names the base checkpoint, the envs, K and the method). It lives
in ldm/pipeline, beside `ldm train`, because it plugs ldm.eval's protocol into the loop as its
periodic evaluation (`--eval-every`).

Imports tyro and ldm.train.finetune; the loop and the evaluation hook inside `main`.
"""

from __future__ import annotations

from typing import Annotated

import tyro


def main(
    checkpoint: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="CHECKPOINT")],
    store: str,
    envs: list[str],
    episodes: int | None = None,
    out: str = "runs/finetune",
    lora: bool = False,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    steps: int = 200,
    batch_size: int = 32,
    micro_batch: int = 32,
    lr: float = 1e-4,
    seed: int = 0,
    checkpoint_every: int = 50,
    val_every: int = 0,
    eval_every: int = 0,
    eval_episodes: int = 2,
    num_workers: int = 1,
    threads: int | None = None,
    resume: bool = True,
) -> int:
    """Fine-tune a trained LDM on some envs' first K reference episodes (full or LoRA).

    Args:
        checkpoint: The model to start from: a folder written by `ldm train`, or a Hub id.
        store: Trajectory store holding the envs' curated reference runs.
        envs: Env ids to tune on.
        episodes: The first K finished reference episodes of each env (default: all).
        out: Output directory: checkpoints/, final/ (the tuned model), metrics.jsonl.
        lora: LoRA adapters (peft) on the backbone's attention and MLP projections, the rest frozen; merged into the final model (an ordinary checkpoint).
        lora_rank: LoRA rank r.
        lora_alpha: LoRA alpha (the update is scaled by alpha / r).
        steps: Optimizer steps.
        batch_size: Windows per optimizer step.
        micro_batch: Windows per forward/backward (gradient accumulation fills the batch).
        lr: AdamW learning rate (LoRA usually wants ~10x more than full fine-tuning).
        seed: Seed of the adapters' initialisation and of the window stream.
        checkpoint_every: Steps between checkpoints.
        val_every: Steps between validations on the runs' held-out streams (0: never).
        eval_every: Steps between evaluations in the envs by the protocol (0: never).
        eval_episodes: Episodes per env of that evaluation.
        num_workers: DataLoader worker processes.
        threads: torch threads on CPU (default: torch's).
        resume: Continue from the newest checkpoint in `out` when there is one.
    """
    from ldm.pipeline.hooks import env_evaluation
    from ldm.train.finetune import finetune_config
    from ldm.train.loop import train

    cfg = finetune_config(
        checkpoint,
        store,
        envs,
        episodes,
        out,
        lora=lora,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        steps=steps,
        batch_size=batch_size,
        micro_batch=micro_batch,
        lr=lr,
        seed=seed,
        checkpoint_every=checkpoint_every,
        val_every=val_every,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        num_workers=num_workers,
        threads=threads,
        resume=resume,
    )
    final = train(cfg, evaluate=env_evaluation(eval_episodes))
    print(f"fine-tuned checkpoint: {final}")
    return 0
