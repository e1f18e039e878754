"""TrainConfig: every knob of `ldm train`, documented and validated (a TOML file or flags).

Every check that needs only the settings (ranges, choices, settings that conflict, the model
preset and its overrides) runs in `__post_init__`, so `ldm run --dry-run` rejects what the
run would. Checks that need the store or the number of ranks run in `ldm.train.setup`.
Imports the model's config (no torch through it), never the loop, data or eval.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

from ldm.errors import ModelError, TrainError
from ldm.model.config import MODEL_PARTS, LDMConfig, preset


@dataclass
class TrainConfig:
    """Training of an LDM policy on a trajectory store by next-action prediction."""

    store: str = ""
    """Trajectory store to train on (curated runs only)."""
    out: str = "runs/train"
    """Output directory: checkpoints/, final/, logs (TensorBoard), metrics.jsonl."""
    preset: str = "ldm-tiny"
    """Model preset (see `ldm model summary`)."""
    model: dict[str, int | float | str] = field(default_factory=dict)
    """Overrides of the preset's LDMConfig fields, e.g. `--model obs_encoder paper context 128`."""
    window: int | None = None
    """Transitions per training window; None = the preset's context."""
    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 1024
    """Global batch in windows (the paper's 1024), split over ranks and accumulation steps."""
    micro_batch: int = 32
    """Windows per forward/backward on one rank; gradient accumulation fills the batch."""
    lr: float = 2.5e-4
    """AdamW learning rate (the paper's constant 2.5e-4)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule after warm-up: constant or cosine (to 10%)."""
    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this (None: no clipping)."""
    weighting: Literal["uniform", "env", "library"] = "env"
    """Window sampling weights: uniform (over transitions), env or library (balanced)."""
    on_bad_run: Literal["stop", "drop"] = "stop"
    """A chunk that fails its check (ldm/data/chunks.py): stop with one line naming the run
    and column, or drop that run (logged, counted as data/dropped_runs) and go on."""
    seed: int = 0
    """Seed of the model initialisation and of the window stream."""
    dtype: Literal["fp32", "bf16"] = "fp32"
    """fp32, or bf16 (autocast; the default on GPU)."""
    compile: bool = False
    """Compile the model with torch.compile."""
    num_workers: int = 1
    """DataLoader worker processes tokenizing windows."""
    checkpoint_every: int = 200
    """Steps between checkpoints (also written on SIGTERM/SIGINT and at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept (the newest)."""
    log_every: int = 10
    """Steps between log lines / TensorBoard points."""
    val_every: int = 100
    """Steps between held-out validations (0: never)."""
    val_batches: int = 4
    """Micro-batches per held-out validation."""
    eval_every: int = 0
    """Steps between evaluations in the environments (0: never); `ldm train` and `ldm run`
    pass ldm.eval's protocol to the loop as its `evaluate` callback."""
    eval_episodes: int = 2
    """Episodes per env in the periodic evaluation."""
    resume: bool = True
    """Continue from the newest checkpoint in `out` when there is one."""
    threads: int | None = None
    """torch threads on CPU (None: torch's default)."""
    envs: list[str] | None = None
    """Train only on these env ids (None: every curated env of the store)."""
    exclude: list[str] = field(default_factory=list)
    """Env ids or library names whose runs are never read (a pipeline's [heldout] table)."""
    episodes: int | None = None
    """Only the first K finished reference episodes of each env (None: all of them)."""
    init_from: str | None = None
    """Start from this checkpoint's weights (fine-tuning; `ldm finetune` sets it)."""
    init_parts: tuple[str, ...] = ()
    """Take only these parts of init_from's weights (of `MODEL_PARTS`: encoder, backbone,
    head); the others start from new weights, as from scratch. Empty: all of them. The
    held-out sweep's ablations of what pretraining shares."""
    lora: bool = False
    """Train LoRA adapters (peft) on the backbone's attention/MLP projections, everything else
    frozen; the final model has them merged in (an ordinary checkpoint). Needs init_from."""
    lora_rank: int = 8
    """LoRA rank r."""
    lora_alpha: float = 16.0
    """LoRA scaling alpha (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA branch's input."""

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if self.schedule not in ("constant", "cosine"):
            raise TrainError(f"schedule {self.schedule!r} is not constant or cosine")
        if self.dtype not in ("fp32", "bf16"):
            raise TrainError(f"dtype {self.dtype!r} is not fp32 or bf16")
        if self.weighting not in ("uniform", "env", "library"):
            raise TrainError(f"weighting {self.weighting!r} is not uniform, env or library")
        if self.on_bad_run not in ("stop", "drop"):
            raise TrainError(f"on_bad_run {self.on_bad_run!r} is not stop or drop")
        for name in (
            "steps",
            "batch_size",
            "micro_batch",
            "checkpoint_every",
            "log_every",
            "keep_checkpoints",
            "val_batches",
            "eval_episodes",
        ):
            if getattr(self, name) < 1:
                raise TrainError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "val_every", "eval_every", "num_workers"):
            if getattr(self, name) < 0:
                raise TrainError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise TrainError(f"lr must be > 0, got {self.lr}")
        self._check_tuning()
        if self.batch_size % self.micro_batch:
            raise TrainError(
                f"batch_size {self.batch_size} is not a multiple of micro_batch "
                f"{self.micro_batch}; change one of them"
            )
        context = self.model_config().context
        if self.window is not None and not 1 <= self.window <= context:
            raise TrainError(
                f"window {self.window} is outside 1..the model's context {context}; "
                "lower --window or raise the context (--model context N)"
            )

    def _check_tuning(self) -> None:
        if self.episodes is not None and self.episodes < 1:
            raise TrainError(f"episodes must be >= 1 (or unset for all), got {self.episodes}")
        if self.envs is not None and not self.envs:
            raise TrainError("envs is an empty list; name at least one env id, or leave it unset")
        if self.envs and set(self.envs) & set(self.exclude):
            raise TrainError(f"envs {sorted(set(self.envs) & set(self.exclude))} are excluded")
        bad = [p for p in self.init_parts if p not in MODEL_PARTS]
        if bad or (self.init_parts and not self.init_from):
            raise TrainError(
                f"init_parts {list(self.init_parts)}: name parts of {list(MODEL_PARTS)} of an "
                "init_from checkpoint (empty: all of it)"
            )
        if self.lora and not self.init_from:
            raise TrainError(
                "lora adapts a trained model: set init_from (`ldm finetune CHECKPOINT --lora`)"
            )
        if self.lora and (self.lora_rank < 1 or self.lora_alpha <= 0):
            raise TrainError(
                f"lora_rank must be >= 1 and lora_alpha > 0, got {self.lora_rank}, "
                f"{self.lora_alpha}"
            )
        if not 0 <= self.lora_dropout < 1:
            raise TrainError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")

    def model_config(self) -> LDMConfig:
        """The preset with this config's overrides (validated: an unknown preset or field, or
        a bad value, is a TrainError naming it)."""
        try:
            return preset(self.preset, **self.model)
        except ModelError as e:
            raise TrainError(f"model {self.preset!r} with overrides {self.model}: {e}") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise TrainError(f"train config has unknown keys {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        data = tomllib.loads(Path(path).read_text())
        return cls.from_dict({**data.get("train", data), **overrides})
