"""A pipeline's `[heldout.adapt]` table: the data-efficiency sweep over the held-out envs.

    [heldout.adapt]
    ks = [1, 5, 20, 100]                 # reference episodes each learner gets
    learners = ["finetune", "scratch", "retrieval"]   # + "finetune-backbone", "finetune-io"
    steps = 200                          # optimizer steps of fine-tuning and of from-scratch
    lora = false                         # fine-tune through LoRA adapters instead of every weight
    seed = 7000                          # the evaluation's base seed: one training never used

For each held-out env and each K, each learner gets the env's first K reference episodes: the
pretrained LDM fine-tuned on them, the same architecture trained from scratch on them, and a
1-nearest-neighbour retrieval agent over them; each is scored by the protocol from `seed`.
The fine-tuned model at `forget_k` is also played on the pretraining envs (forgetting).

Owns: `AdaptConfig` (the table, validated) and `LEARNERS`. Imports only the standard library
and ldm.errors (read by `--dry-run`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from ldm.errors import ConfigError

Learner = Literal["finetune", "scratch", "retrieval", "finetune-backbone", "finetune-io"]
LEARNERS: tuple[Learner, ...] = get_args(Learner)
#: the ablations of what pretraining shares: diagnostic, so they run at `bar_k` only
ABLATIONS: tuple[Learner, ...] = ("finetune-backbone", "finetune-io")


@dataclass(frozen=True)
class AdaptConfig:
    """The sweep's settings: which K, which learners, how each trains and is scored."""

    ks: tuple[int, ...] = (1, 5, 20, 100)
    """Reference episodes per env given to each learner (the first K of its curated runs)."""
    learners: tuple[Learner, ...] = ("finetune", "scratch", "retrieval")
    """finetune (the pretrained LDM), scratch (same architecture, new weights), retrieval (1-NN);
    the ablations of what pretraining shares, fine-tuned as `finetune` is: finetune-backbone
    (the pretrained transformer, new encoder and action head), finetune-io (the pretrained
    encoder and head, a new transformer); the ablations run at `bar_k` only."""
    steps: int = 200
    """Optimizer steps of fine-tuning."""
    scratch_steps: int | None = None
    """Optimizer steps from scratch (None: `steps`, the same budget)."""
    lr: float = 1e-4
    """Fine-tuning's learning rate (LoRA usually wants ~10x more)."""
    scratch_lr: float | None = None
    """From scratch's learning rate (None: the [train] table's, the pretraining's; its
    schedule and warm-up are the pretraining's too). Fine-tuning's is constant."""
    batch_size: int = 32
    """Windows per optimizer step, both trained learners."""
    lora: bool = False
    """Fine-tune LoRA adapters on the backbone (peft) instead of every weight."""
    lora_rank: int = 8
    seed: int = 7000
    """The sweep's evaluation base seed: neither the references' training nor the other
    evaluations use it (seeds never used in training)."""
    rollouts: int | None = None
    """Rollouts per cell's evaluation (None: the [eval] table's)."""
    episodes: int | None = None
    """Episodes per rollout (None: the [eval] table's)."""
    forgetting: bool = True
    """Play the fine-tuned model of each held-out env (at `forget_k`) on the pretraining envs."""
    forget_k: int | None = None
    """The K whose fine-tuned model is checked for forgetting (None: the largest of `ks`); an
    env with fewer episodes is checked at the largest K it has."""
    bar_k: int = 5
    """The K at which fine-tuning must beat from scratch (the bar's first half)."""
    threshold: float = 80.0
    """The score (% of reference) the bar's second half counts the episodes to reach."""
    keep_models: bool = False
    """Keep each cell's trained model (OUT/adapt/runs/); off: removed once the cell is scored."""

    def __post_init__(self) -> None:
        ks = tuple(self.ks)
        if not ks or any(not isinstance(k, int) or k < 1 for k in ks) or len(set(ks)) < len(ks):
            raise ConfigError(f"[heldout.adapt] ks {list(ks)}: give distinct integers >= 1")
        object.__setattr__(self, "ks", tuple(sorted(ks)))
        bad = [x for x in self.learners if x not in LEARNERS]
        if bad or not self.learners:
            raise ConfigError(
                f"[heldout.adapt] learners {list(self.learners)}: choose from {list(LEARNERS)}"
            )
        object.__setattr__(self, "learners", tuple(self.learners))
        for name in ("steps", "batch_size", "lora_rank"):
            if getattr(self, name) < 1:
                raise ConfigError(f"[heldout.adapt] {name} must be >= 1")
        if self.scratch_steps is not None and self.scratch_steps < 1:
            raise ConfigError("[heldout.adapt] scratch_steps must be >= 1 (or unset: steps)")
        if self.forget_k is not None and self.forget_k not in self.ks:
            raise ConfigError(
                f"[heldout.adapt] forget_k {self.forget_k} is not one of ks {list(self.ks)}"
            )
        for name in ("rollouts", "episodes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"[heldout.adapt] {name} must be >= 1 (or unset: [eval]'s)")

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> AdaptConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(table) - known
        if unknown:
            raise ConfigError(
                f"[heldout.adapt] has unknown keys {sorted(unknown)}; allowed: {sorted(known)}"
            )
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})
        except TypeError as e:
            raise ConfigError(f"[heldout.adapt]: {e}") from None

    @property
    def forgetting_k(self) -> int:
        return self.forget_k if self.forget_k is not None else self.ks[-1]

    def cells(self, env_ids: list[str]) -> list[tuple[str, int, Learner]]:
        """Every (env, K, learner) cell in the order the sweep runs them: K by K, `bar_k`
        first (a sweep cut short still has the bar's first half on every env), then env by
        env; the ablations at `bar_k` only."""
        order = sorted(self.ks, key=lambda k: (k != self.bar_k, k))
        return [
            (e, k, x)
            for k in order
            for e in env_ids
            for x in self.learners
            if k == self.bar_k or x not in ABLATIONS
        ]

    def check_seed(self, eval_seed: int, unseen_seed: int | None) -> None:
        """The sweep's seed must differ from the other evaluations' (its seeds are unseen)."""
        if self.seed in (eval_seed, unseen_seed):
            raise ConfigError(
                f"[heldout.adapt] seed {self.seed} is an [eval] seed already; choose another "
                f"(e.g. {max(eval_seed, unseen_seed or 0) + 2000})"
            )
