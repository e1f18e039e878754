"""LDMPolicy: transition encoder -> Llama backbone (Hugging Face) -> masked action head.

Checkpoints are `model.safetensors` + `config.json` (no pickle); loading needs only this
package. The action head predicts 1024 logits for each of 28 action dims; bins beyond a
dim's valid count and padded dims are masked. The loss is cross-entropy of the reference
action over valid dims at every unpadded position, computed only for valid dims (most envs
use a few of the 28) so that a batch never materialises (B, T, 28, 1024) logits.

Imports torch, transformers, safetensors, ldm.model's config/encoders/card and ldm.tokens;
never ldm.data, ldm.envs, ldm.train or ldm.eval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import LlamaConfig, LlamaModel

import ldm
from ldm.errors import ModelError
from ldm.model.card import (
    CARD_FILE,
    EvalFacts,
    TrainingFacts,
    facts_from_json,
    facts_to_json,
    render_card,
    resolve_checkpoint,
)
from ldm.model.config import LDMConfig
from ldm.model.encoders import TransitionEncoder, used_dims
from ldm.spaces import MAX_ACT_DIMS, N_BINS
from ldm.tokens import ActionDecoding, Batch

CHECKPOINT_FORMAT = 1
NEG = -1e9


def llama_config(cfg: LDMConfig) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=1,
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads or cfg.heads,
        max_position_embeddings=max(cfg.context * 2, 4096),
        rope_theta=cfg.rope_theta,
        attn_implementation="sdpa",
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


# logits materialised at once by the loss (rows x D x 1024 values, ~4 MB in fp32): small
# chunks stay in cache and measured fastest on CPU for both the tiny and the 32M preset
LOSS_CHUNK = 1024 * 1024


class LDMPolicy(nn.Module):
    """The LDM policy. See docs/architecture.md for the acting interface."""

    def __init__(self, config: LDMConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TransitionEncoder(config)
        self.backbone = LlamaModel(llama_config(config))
        self.backbone.embed_tokens = None  # we feed inputs_embeds; no vocabulary
        self.head = nn.Linear(config.hidden, MAX_ACT_DIMS * N_BINS)
        # model-card facts (ldm/model/card.py): set by the trainer, kept through checkpoints
        self.training_facts: TrainingFacts | None = None
        self.eval_facts: EvalFacts | None = None

    # -- forward ---------------------------------------------------------------------------
    def hidden_states(self, batch: Batch, **backbone_kwargs: Any) -> Any:
        tokens = self.encoder(batch)  # (B, T, H)
        return self.backbone(inputs_embeds=tokens, **backbone_kwargs)

    def forward(self, batch: Batch, return_loss: bool = False) -> Any:
        """Masked logits (B, T, 28, 1024); with `return_loss`, `self.loss(batch)` (so that
        DistributedDataParallel, which hooks forward(), sees the training step)."""
        if return_loss:
            return self.loss(batch)
        h = self.hidden_states(batch, use_cache=False).last_hidden_state
        return self.masked_logits(h, batch.act_n)

    def masked_logits(
        self, h: torch.Tensor, act_n: torch.Tensor, dims: int = MAX_ACT_DIMS
    ) -> torch.Tensor:
        """Masked logits (B, T, dims, 1024) of the first `dims` action dims (acting passes the
        widest action of its envs: the head's other rows are never computed)."""
        B, T, _ = h.shape
        n = act_n[:, None, :dims].expand(B, T, dims)
        logits = self._head_logits(
            h.reshape(B * T, -1), n.reshape(B * T, dims), self._head_slice(dims)
        )
        return logits.view(B, T, dims, N_BINS)

    def _head_logits(
        self, h: torch.Tensor, n: torch.Tensor, head: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """(N, H) hidden states, (N, D) bins per dim, `head` = `_head_slice(D)` -> (N, D, 1024)
        logits of the first D dims, bins >= n masked. The loss reuses one slice over its chunks:
        each slice's backward writes a zero-filled gradient of the whole head."""
        weight, bias = head
        logits = nn.functional.linear(h, weight, bias)
        bins = torch.arange(N_BINS, device=h.device)
        return logits.view(-1, n.shape[1], N_BINS).masked_fill(bins >= n[..., None].long(), NEG)

    def _head_slice(self, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's weight and bias rows of the first `dims` action dims."""
        return self.head.weight[: dims * N_BINS], self.head.bias[: dims * N_BINS]

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of `targets` over valid dims at unpadded positions, and accuracies.

        Logits are computed only at unpadded positions and only for the first D action dims
        (D = the widest action in the batch); rows are chunked so that N x D x 1024 logits stay
        within LOSS_CHUNK values."""
        h = self.hidden_states(batch, use_cache=False).last_hidden_state  # (B, T, H)
        pos = batch.loss_mask.bool()  # (B, T)
        act_n = batch.act_n.long()  # (B, 28)
        D = used_dims(batch.act_dim_type)  # the widest action in the batch
        if not bool(pos.any()) or D == 0:
            raise ModelError(
                "the batch has no valid target (all positions padded or no action dims)"
            )
        hv = h[pos]  # (N, H)
        n = act_n[:, None, :D].expand(-1, pos.shape[1], -1)[pos]  # (N, D)
        valid = n > 0
        t = batch.targets.long()[..., :D][pos].masked_fill(~valid, -100)  # (N, D)
        rows_per_chunk = max(1, LOSS_CHUNK // (D * N_BINS))
        head = self._head_slice(D)
        total = h.new_zeros(())
        hits = []
        for i in range(0, hv.shape[0], rows_per_chunk):
            sl = slice(i, i + rows_per_chunk)
            logits = self._head_logits(hv[sl], n[sl], head)
            total = total + nn.functional.cross_entropy(
                logits.reshape(-1, N_BINS), t[sl].reshape(-1), ignore_index=-100, reduction="sum"
            )
            hits.append(logits.detach().argmax(-1) == t[sl])
        hit = torch.cat(hits) & valid  # (N, D)
        count = int(valid.sum())
        loss = total / count
        step_ok = (hit | ~valid).all(-1)  # every valid dim of the step right
        metrics = {
            "loss": loss.detach(),
            "accuracy": step_ok.sum().float() / hv.shape[0],
            "dim_accuracy": hit.sum().float() / count,
        }
        return loss, metrics

    @torch.no_grad()
    def per_env_metrics(self, batch: Batch) -> dict[int, dict[str, float]]:
        """Loss and step accuracy per `env_index` of a batch (for held-out validation)."""
        out: dict[int, dict[str, float]] = {}
        for e in batch.env_index.unique().tolist():
            sel = batch.env_index == e
            loss, m = self.loss(batch.select(sel))
            out[int(e)] = {"loss": float(loss), "accuracy": float(m["accuracy"])}
        return out

    # -- acting ------------------------------------------------------------------------------
    def start_session(self, obs_specs: list, act_specs: list) -> Any:
        """A batched acting session with empty contexts, one per env (see acting.py)."""
        from ldm.model.acting import ActingSession

        return ActingSession(self, obs_specs, act_specs)

    def agent(
        self,
        env_or_observation_space: Any,
        action_space: Any = None,
        decoding: ActionDecoding = "median",
        temperature: float = 1.0,
    ) -> Any:
        """An `LDMAgent` (ldm/model/agent.py) acting in a gym env, a vector env, or the env of
        two gym spaces (or SpaceSpecs): SB3's `predict`, JAT's `get_next_action`, the context
        kept across episodes."""
        from ldm.model.agent import LDMAgent, env_spaces

        if action_space is None:
            obs_space, action_space = env_spaces(env_or_observation_space)
        else:
            obs_space = env_or_observation_space
        return LDMAgent(self, obs_space, action_space, decoding=decoding, temperature=temperature)

    # -- checkpoints ---------------------------------------------------------------------------
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write model.safetensors, config.json and the README.md model card into `directory`."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(d / "model.safetensors"), metadata={"format": str(CHECKPOINT_FORMAT)})
        meta = {
            "format": CHECKPOINT_FORMAT,
            "ldm_version": ldm.__version__,
            "config": self.config.to_dict(),
            "num_params": self.num_params(),
            "card": facts_to_json(self.training_facts, self.eval_facts),
        }
        (d / "config.json").write_text(json.dumps(meta, indent=1))
        card = render_card(
            self.config, meta["num_params"], self.training_facts, self.eval_facts, ldm.__version__
        )
        (d / CARD_FILE).write_text(card)
        return d

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device = "cpu"
    ) -> LDMPolicy:
        """Load a folder written by `save_pretrained`, or a Hub id (`owner/name`, downloaded by
        huggingface_hub into its cache; served from the cache when offline)."""
        from safetensors.torch import load_file

        d = resolve_checkpoint(directory)
        try:
            meta = json.loads((d / "config.json").read_text())
        except FileNotFoundError:
            raise ModelError(f"{d} is not an LDM checkpoint: config.json is missing") from None
        except json.JSONDecodeError as e:
            raise ModelError(f"{d}/config.json is corrupted: {e}") from None
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ModelError(
                f"{d}: checkpoint format {meta.get('format')} (ldm {meta.get('ldm_version')}); "
                f"this ldm {ldm.__version__} reads format {CHECKPOINT_FORMAT}"
            )
        model = cls(LDMConfig.from_dict(meta["config"]))
        try:
            state = load_file(str(d / "model.safetensors"), device=str(device))
        except Exception as e:
            raise ModelError(
                f"{d}/model.safetensors cannot be read (truncated or corrupted?): {e}"
            ) from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(
                f"{d}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        model.training_facts, model.eval_facts = facts_from_json(meta.get("card"))
        return model.to(device).eval()


def parameter_counts(config: LDMConfig) -> dict[str, int]:
    """Parameters per part (encoder, backbone, head) of a model, built on the meta device."""
    with torch.device("meta"):
        model = LDMPolicy(config)
    return {name: sum(p.numel() for p in mod.parameters()) for name, mod in model.named_children()}
