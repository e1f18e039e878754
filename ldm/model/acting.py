"""ActingSession: act in a batch of envs at once, each with its own history, KV-cached.

Per step, one model call for all envs: the new transition tokens (o_t with a_{t-1}, r_{t-1},
d_{t-1}) are appended to the Llama KV cache. History is kept across episodes (the paper's
protocol); `reset(indices)` empties some envs' contexts by masking their past out of the
attention (RoPE is relative, so a masked past is the same as an empty one). When the cache
reaches the context length, it is rebuilt from the most recent half-context of tokens.

Imports torch, transformers, ldm.tokenizer (`tokenize_step`, the same one the training
windows use) and ldm.tokens; never ldm.data, ldm.envs or ldm.eval (envs are stepped by the
caller).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache, LlamaModel

from ldm import tokenizer as tk
from ldm.errors import ModelError
from ldm.spaces import MAX_ACT_DIMS, SpaceSpec, as_spec
from ldm.tokens import ActionDecoding, Batch

# transformers 5.x renamed the cache argument `past_key_values` -> `cache` (the old name warns
# and goes away in 5.40); use whichever this version takes
_CACHE_ARG = (
    "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"
)


def _argmax_bins(logits: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
    """The most likely bin of every dim."""
    return logits.argmax(-1)


def _median_bins(logits: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
    """Continuous dims: the first bin where the predicted distribution's CDF reaches 1/2 (its
    median; bins are ordered values). Categorical dims: the most likely category."""
    cdf = torch.softmax(logits.float(), -1).cumsum(-1)
    median = (cdf >= 0.5).int().argmax(-1)
    return torch.where(continuous, median, logits.argmax(-1))


#: deterministic action decoding by name (ldm.tokens.ActionDecoding)
DECODERS = {"argmax": _argmax_bins, "median": _median_bins}


class ActingSession:
    """One model call per step for B envs, each with its own history (see module docstring)."""

    def __init__(self, policy: Any, obs_specs: list[Any], act_specs: list[Any]) -> None:
        """`obs_specs`/`act_specs`: one SpaceSpec (or gymnasium space) of each env."""
        if len(obs_specs) != len(act_specs) or not obs_specs:
            raise ModelError("start_session needs one observation and one action spec per env")
        self.policy = policy
        self.obs_specs = [as_spec(s) for s in obs_specs]
        self.act_specs = [as_spec(s) for s in act_specs]
        self.num_envs = len(obs_specs)
        self.device = next(policy.parameters()).device
        self._layout()
        self.context = policy.config.context
        B = self.num_envs
        self.prev_actions = np.zeros((B, MAX_ACT_DIMS), np.int16)
        self.prev_rewards = np.zeros(B, np.float64)
        self.prev_done = np.full(B, tk.DONE_START, np.int8)
        self._pending_actions: np.ndarray | None = None
        self.steps = 0
        self._embeds: list[torch.Tensor] = []  # per step (B, H): to rebuild the cache
        self._valid: list[np.ndarray] = []  # per step (B,) bool: False once an env is reset
        self.cache: DynamicCache | None = None

    def _layout(self) -> None:
        """What follows from the envs' spaces: action layouts, the widest action, the groups
        of envs that share a spec pair (tokenized together) and the order that undoes them."""
        layouts = [tk.act_layout(s) for s in self.act_specs]
        self.act_dim_type = np.stack([t for t, _ in layouts])  # (B, 28)
        self.act_n = np.stack([n for _, n in layouts])  # (B, 28)
        # the widest action of these envs: the head rows beyond it are never computed
        used = (self.act_dim_type != 0).any(axis=0).nonzero()[0]
        self.act_dims = int(used.max()) + 1 if used.size else 1
        self._act_n_t = torch.as_tensor(self.act_n, device=self.device)
        self._continuous = torch.as_tensor(
            self.act_dim_type[:, : self.act_dims] == tk.DIM_CONTINUOUS, device=self.device
        )
        groups: dict[tuple[SpaceSpec, SpaceSpec], list[int]] = {}
        for i, pair in enumerate(zip(self.obs_specs, self.act_specs)):
            groups.setdefault(pair, []).append(i)
        self._groups = [(o, a, np.asarray(idx)) for (o, a), idx in groups.items()]
        # rows come grouped by spec pair; this puts them back in env order
        self._order = np.argsort(np.concatenate([idx for *_, idx in self._groups]), kind="stable")

    def keep(self, indices: Any) -> None:
        """Go on with only the envs at `indices` (in this order): the others leave the batch,
        their rows of the KV cache with them, so each step costs what the remaining envs
        cost. Call it between `record` and the next `act`."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self._pending_actions is not None:
            raise ModelError("keep() must follow record(), not act()")
        if not idx.size or idx.min() < 0 or idx.max() >= self.num_envs:
            raise ModelError(f"keep() needs indices in [0, {self.num_envs}), got {idx.tolist()}")
        rows = torch.as_tensor(idx, device=self.device)
        self.obs_specs = [self.obs_specs[i] for i in idx]
        self.act_specs = [self.act_specs[i] for i in idx]
        self.num_envs = len(idx)
        self._layout()
        self.prev_actions = self.prev_actions[idx]
        self.prev_rewards = self.prev_rewards[idx]
        self.prev_done = self.prev_done[idx]
        self._embeds = [e[rows] for e in self._embeds]
        self._valid = [v[idx] for v in self._valid]
        if self.cache is not None:
            self.cache.batch_select_indices(rows)

    # -- inputs --------------------------------------------------------------------------------
    def _check_shapes(self, observations: list[Any]) -> None:
        """Each observation has its env's shape (a wrong one would be tokenized as something
        else, or fail deep in the tokenizer)."""
        for i, (o, spec) in enumerate(zip(observations, self.obs_specs)):
            if np.shape(o) != spec.value_shape:
                raise ModelError(
                    f"observation {i} has shape {np.shape(o)}; its env's observation space "
                    f"{spec.describe()} takes shape {spec.value_shape}"
                )

    def _token_batch(self, observations: list[Any]) -> Batch:
        """(B, 1, ...) tokens of this step: each env's o_t with its a_{t-1}, r_{t-1}, d_{t-1},
        built by the tokenizer that builds the training windows (one call per spec pair: the
        envs of a pair are its rows)."""
        steps = [
            tk.tokenize_step(
                obs_spec,
                act_spec,
                np.stack([np.asarray(observations[i]) for i in idx]),
                self.prev_actions[idx],
                self.prev_rewards[idx],
                self.prev_done[idx],
            )
            for obs_spec, act_spec, idx in self._groups
        ]
        return tk.steps_to_batch(steps).select(self._order).to(self.device)

    # -- the step -----------------------------------------------------------------------------
    @torch.no_grad()
    def act(
        self,
        observations: list[Any],
        deterministic: bool = True,
        temperature: float = 1.0,
        decoding: ActionDecoding = "median",
    ) -> list[Any]:
        """Actions (env format) for the current observation of every env: deterministic ones
        read by `decoding` (DECODERS), else sampled at `temperature`."""
        if decoding not in DECODERS:
            raise ModelError(f"decoding {decoding!r} is not one of {sorted(DECODERS)}")
        if len(observations) != self.num_envs:
            raise ModelError(f"act() got {len(observations)} observations for {self.num_envs} envs")
        policy = self.policy
        if self._pending_actions is not None:
            raise ModelError("call record(rewards, terminated, truncated) after each act()")
        self._check_shapes(observations)
        batch = self._token_batch(observations)
        embed = policy.encoder(batch)  # (B, 1, H)
        if len(self._embeds) >= self.context:
            self._rebuild(keep=self.context // 2)
        self._embeds.append(embed[:, 0])
        self._valid.append(np.ones(self.num_envs, bool))
        logits = self._step_logits(embed)  # (B, 28, 1024)
        if deterministic:
            bins = DECODERS[decoding](logits, self._continuous)
        else:
            probs = torch.softmax(logits / max(temperature, 1e-6), dim=-1)
            bins = torch.multinomial(probs.view(-1, probs.shape[-1]), 1).view(probs.shape[:-1])
        bins_np = np.zeros(self.act_dim_type.shape, np.int16)
        bins_np[:, : bins.shape[1]] = bins.cpu().numpy()
        bins_np *= self.act_dim_type != 0
        self._pending_actions = bins_np
        self.steps += 1
        return [tk.decode_actions(spec, b) for spec, b in zip(self.act_specs, bins_np)]

    def _attention_mask(self) -> torch.Tensor:
        return torch.as_tensor(np.stack(self._valid, axis=1), device=self.device).long()  # (B, L)

    def _step_logits(self, embed: torch.Tensor) -> torch.Tensor:
        L = len(self._embeds)
        mask = self._attention_mask()
        if self.cache is None:  # (re)build from all stored tokens
            seq = torch.stack(self._embeds, dim=1)
            self.cache = DynamicCache()
            out = self.policy.backbone(
                inputs_embeds=seq,
                attention_mask=mask,
                position_ids=torch.arange(L, device=self.device)[None].expand(self.num_envs, -1),
                **{_CACHE_ARG: self.cache},
                use_cache=True,
            )
        else:
            out = self.policy.backbone(
                inputs_embeds=embed,
                attention_mask=mask,
                position_ids=torch.full((self.num_envs, 1), L - 1, device=self.device),
                **{_CACHE_ARG: self.cache},
                use_cache=True,
            )
        # the DynamicCache passed in is updated in place
        h = out.last_hidden_state[:, -1:]  # (B, 1, H)
        logits = self.policy.masked_logits(h, self._act_n_t, self.act_dims)[:, 0]
        self._step_logits_last = logits  # kept for tests and diagnostics
        return logits

    def _rebuild(self, keep: int) -> None:
        self._embeds = self._embeds[-keep:]
        self._valid = self._valid[-keep:]
        self.cache = None

    def record(self, rewards: Any, terminated: Any, truncated: Any) -> None:
        """Outcome of the last actions: they and these signals enter the next tokens."""
        if self._pending_actions is None:
            raise ModelError("record() must follow act()")
        term = np.asarray(terminated, bool).reshape(-1)
        trunc = np.asarray(truncated, bool).reshape(-1)
        self.prev_actions = self._pending_actions
        self.prev_rewards = np.asarray(rewards, np.float64).reshape(-1)
        self.prev_done = tk.done_codes(term, trunc)
        self._pending_actions = None

    def reset(self, indices: Any = None) -> None:
        """Empty the contexts of some envs (all when None): a new rollout for them."""
        idx = (
            np.arange(self.num_envs)
            if indices is None
            else np.asarray(indices, dtype=np.int64).reshape(-1)
        )
        for v in self._valid:
            v[idx] = False
        self.prev_actions[idx] = 0
        self.prev_rewards[idx] = 0.0
        self.prev_done[idx] = tk.DONE_START
        self._pending_actions = None
        if indices is None:
            self._embeds, self._valid, self.cache, self.steps = [], [], None, 0
