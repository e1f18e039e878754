"""LoRA adapters (peft) on the LDM's Llama backbone: added for fine-tuning, merged at the end.

`add_lora` freezes the whole policy and wraps its backbone with peft's LoRA on every attention
and MLP projection, so only the adapters train; its checkpoints hold the adapters beside the
frozen weights (resumable by the same run). `merge_lora` folds the adapters into the weights
and unwraps the backbone, so the final model is an ordinary LDMPolicy checkpoint
(`LDMPolicy.from_pretrained`, `ldm eval`).

Imports torch and peft (lazily); the model is passed in; never ldm.data or ldm.eval.
"""

from __future__ import annotations

from typing import Any

#: the Llama decoder's projections that get adapters (attention, then MLP)
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def add_lora(model: Any, rank: int, alpha: float, dropout: float) -> int:
    """Freeze `model` and give its backbone LoRA adapters; returns the trainable parameters."""
    from peft import LoraConfig, get_peft_model

    for p in model.parameters():
        p.requires_grad_(False)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(TARGET_MODULES),
        bias="none",
    )
    model.backbone = get_peft_model(model.backbone, config)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def has_lora(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model.backbone, PeftModel)


def merge_lora(model: Any) -> None:
    """Fold the adapters into the backbone's weights and unwrap it (in place)."""
    if has_lora(model):
        model.backbone = model.backbone.merge_and_unload()
        for p in model.parameters():
            p.requires_grad_(True)
