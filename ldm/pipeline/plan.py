"""`ldm run CONFIG --dry-run`: validate a pipeline config and print its plan without running it.

Owns: the dry run's plan (`DryRunPlan`: jobs, transitions and bytes per library, the model
and the evaluation) and its storage estimate. Imports the pipeline config, the hub's spaces
and refgen's planner; must not import torch, ldm.model, ldm.train or ldm.eval (a dry run
starts no training and no evaluation).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ldm.pipeline.config import PipelineConfig
from ldm.refgen.autobudget import AutoBudget
from ldm.refgen.plan import LibraryJobs
from ldm.refgen.selection import Selection
from ldm.spaces import SpaceSpec

#: bytes on disk per transition, by observation kind, before compression (raw arrays); the
#: compression ratios measured by bench/data.py are applied on top.
COMPRESSION = {"vector": 0.6, "image": 0.35}


def _raw_bytes(obs: SpaceSpec, act: SpaceSpec) -> int:
    if obs.kind == "image":
        o = math.prod(obs.shape)  # uint8 pixels
    else:
        o = 8 if obs.kind == "discrete" else obs.flat_dim * 4
    a = max(1, act.flat_dim) * (4 if act.kind == "continuous" else 8)
    return o + 2 * a + 4 + 2  # obs, actions + reference actions, reward, flags


@dataclass(frozen=True)
class DryRunPlan:
    """What `ldm run CONFIG` would do, in figures (a tested contract)."""

    name: str
    libraries: dict[str, LibraryJobs]
    library_bytes: dict[str, int]
    """Estimated bytes of each library's runs in the store."""
    model: str
    train_steps: int
    train_windows: int
    eval_episodes_per_env: int
    runner: str
    cluster: dict[str, Any] = field(default_factory=dict)
    fallback_jobs_max: int = 0
    """Reference jobs `refgen.fallback_candidates` may add where references fail curation (at
    most; not in `jobs` or `transitions`)."""
    selection: Selection | None = None
    """The envs `[refgen.select]` picked and why each other one is out (None: a list)."""
    auto_budget: AutoBudget | None = None
    """The rule that ends every run (None: fixed budgets); `transitions` are then its caps."""
    workers: int = 1
    """Jobs at once (the refgen stage's bound on time below)."""
    heldout: dict[str, Any] = field(default_factory=dict)
    """The held-out stages ({} without a [heldout] table): `heldout_plan`."""

    @property
    def refgen_hours_max(self) -> float | None:
        """With an auto budget: the reference stage's longest time, every job at the seconds
        cap (fallbacks excluded), `workers` at once; with the stage's shared hours, at most
        those."""
        if self.auto_budget is None:
            return None
        hours = self.jobs * self.auto_budget.max_seconds / self.workers / 3600
        if self.auto_budget.stage_hours is not None:
            hours = min(hours, self.auto_budget.stage_hours)
        return round(hours, 2)

    @property
    def jobs(self) -> int:
        return sum(lib.rank_jobs + lib.train_jobs for lib in self.libraries.values())

    @property
    def transitions(self) -> int:
        return sum(lib.transitions for lib in self.libraries.values())

    @property
    def transitions_max(self) -> int:
        return sum(lib.transitions_max for lib in self.libraries.values())

    @property
    def estimated_storage_gb(self) -> float:
        return round(sum(self.library_bytes.values()) / 1e9, 2)

    def to_dict(self) -> dict[str, Any]:
        """The form `--dry-run` prints."""
        return {
            "name": self.name,
            "libraries": {
                k: {**v.to_dict(), "bytes": self.library_bytes[k]}
                for k, v in self.libraries.items()
            },
            "jobs": self.jobs,
            "transitions": self.transitions,
            "transitions_max": self.transitions_max,
            "estimated_storage_gb": self.estimated_storage_gb,
            "model": self.model,
            "train_steps": self.train_steps,
            "train_windows": self.train_windows,
            "eval_episodes_per_env": self.eval_episodes_per_env,
            "runner": self.runner,
            "cluster": self.cluster,
            "fallback_jobs_max": self.fallback_jobs_max,
            **({"selection": self.selection.to_dict()} if self.selection else {}),
            **(
                {"auto_budget": asdict(self.auto_budget), "refgen_hours_max": self.refgen_hours_max}
                if self.auto_budget
                else {}
            ),
            **({"heldout": self.heldout} if self.heldout else {}),
        }

    def headline(self) -> str:
        picked = (
            f"{len(self.selection.envs)} envs of {len(self.selection.picked)} libraries picked "
            "by rule, "
            if self.selection is not None
            else ""
        )
        budget = (
            f"runs end by rule, at most {self.transitions:,} transitions and "
            f"{self.refgen_hours_max} h of reference runs on {self.workers} workers"
            + (
                " (the stage's hours shared: each run's seconds cap is its share of what is "
                "left when it starts)"
                if self.auto_budget.stage_hours is not None
                else ""
            )
            if self.auto_budget is not None
            else f"{self.transitions:,} transitions"
        )
        return (
            f"plan: {picked}{self.jobs} training jobs"
            + (
                f" (+ up to {self.fallback_jobs_max} fallbacks where a reference fails curation)"
                if self.fallback_jobs_max
                else ""
            )
            + f", {budget}, ~{self.estimated_storage_gb} GB of store, "
            f"model {self.model} for {self.train_steps:,} steps"
            + (f"; {self.heldout['line']}" if self.heldout else "")
        )


def heldout_plan(cfg: PipelineConfig, env_ids: list[str]) -> dict[str, Any]:
    """What the held-out stages will play: the held-out envs among the planned ones, by kind,
    and the sweep's cells (envs x K x learners) and forgetting evaluations."""
    held = cfg.held_out
    if not held.active:
        return {}
    envs = [e for e in dict.fromkeys(env_ids) if held.covers(e)]
    kinds = {k: [e for e in envs if held.kind(e) == k] for k in ("unseen env", "unseen library")}
    libraries = sorted({e.split("/", 1)[0] for e in envs})
    out: dict[str, Any] = {"envs": kinds, "libraries": libraries, "pretraining_envs": len(
        [e for e in dict.fromkeys(env_ids) if not held.covers(e)])}  # fmt: skip
    line = (
        f"held out: {len(kinds['unseen env'])} unseen envs and {len(kinds['unseen library'])} "
        f"of unseen libraries ({len(libraries)} libraries), scored zero-shot"
    )
    adapt = held.adapt
    if adapt is not None:
        cells = len(adapt.cells(envs))
        trained = sum(x != "retrieval" for _, _, x in adapt.cells(envs))
        forget = len(envs) if adapt.forgetting and "finetune" in adapt.learners else 0
        out["adapt"] = {"ks": list(adapt.ks), "learners": list(adapt.learners), "cells": cells,
                        "trained_cells": trained, "steps": adapt.steps,
                        "scratch_steps": adapt.scratch_steps or adapt.steps, "lora": adapt.lora,
                        "seed": adapt.seed, "forgetting_evaluations": forget}  # fmt: skip
        line += (
            f", then {cells} cells of score against K = {list(adapt.ks)} ({trained} trained, "
            f"{adapt.steps} steps each) and {forget} forgetting evaluations"
        )
    out["line"] = line
    return out


def plan(cfg: PipelineConfig) -> DryRunPlan:
    """The dry run's plan: the refgen jobs of the one planner (ldm/refgen/plan.py), counted
    per library and per env with their budgets, plus storage, model and evaluation."""
    from ldm.envs import env_spaces
    from ldm.refgen.plan import fallback_jobs_max, plan_jobs, selection, summarise_jobs

    refgen, train, evaluation = cfg.stages
    jobs = plan_jobs(refgen, cfg.store)
    libs = summarise_jobs(jobs)
    per_tr: dict[str, float] = {}
    for j in jobs:
        if j.env_id not in per_tr:
            obs, act = env_spaces(j.env_id)
            kind = "image" if obs.kind == "image" else "vector"
            per_tr[j.env_id] = _raw_bytes(obs, act) * COMPRESSION[kind]
    return DryRunPlan(
        name=cfg.name,
        libraries=libs,
        library_bytes={
            name: int(sum(e.transitions * per_tr[env] for env, e in lib.envs.items()))
            for name, lib in libs.items()
        },
        model=train.preset,
        train_steps=train.steps,
        train_windows=train.steps * train.batch_size,
        eval_episodes_per_env=evaluation.rollouts * evaluation.episodes,
        runner=refgen.runner,
        cluster=cfg.cluster,
        fallback_jobs_max=fallback_jobs_max(refgen, cfg.store),
        selection=selection(refgen) if refgen.select is not None else None,
        auto_budget=refgen.auto_budget,
        workers=refgen.workers or os.cpu_count() or 1,
        heldout=heldout_plan(cfg, [j.env_id for j in jobs]),
    )
