"""`ldm run CONFIG --dry-run`: validate a pipeline config and print its plan without running it.

Owns: the dry run's printed plan and its figures (jobs, transitions, bytes per library).
Imports the pipeline config, the hub's spaces and refgen's planner; must not import torch,
ldm.model, ldm.train or ldm.eval (a dry run starts no training and no evaluation).
"""

from __future__ import annotations

from typing import Any

from ldm.pipeline.run import PipelineConfig

#: bytes on disk per transition, by observation kind, before compression (raw arrays); the
#: compression ratios measured by bench/data.py are applied on top.
COMPRESSION = {"vector": 0.6, "image": 0.35}


def _raw_bytes(obs: Any, act: Any) -> int:
    import numpy as np

    if obs.kind == "image":
        o = int(np.prod(obs.shape))
    else:
        o = 8 if obs.kind == "discrete" else obs.flat_dim * 4
    a = max(1, act.flat_dim) * (4 if act.kind == "continuous" else 8)
    return o + 2 * a + 4 + 2  # obs, actions + reference actions, reward, flags


def plan(cfg: PipelineConfig) -> dict[str, Any]:
    """The dry run's plan: the refgen jobs of the one planner (ldm/refgen/plan.py), counted
    per library and per env with their budgets, plus storage, model and evaluation."""
    from ldm.envs import env_spaces
    from ldm.refgen.plan import plan_jobs, summarise_jobs

    refgen, train, evaluation = cfg.stage_configs()
    jobs = plan_jobs(refgen, cfg.store)
    libs = summarise_jobs(jobs)
    per_tr: dict[str, float] = {}
    for j in jobs:
        if j.env_id not in per_tr:
            obs, act = env_spaces(j.env_id)
            kind = "image" if obs.kind == "image" else "vector"
            per_tr[j.env_id] = _raw_bytes(obs, act) * COMPRESSION[kind]
    for lib in libs.values():
        lib["bytes"] = int(sum(e["transitions"] * per_tr[env] for env, e in lib["envs"].items()))
    return {
        "name": cfg.name,
        "libraries": libs,
        "jobs": len(jobs),
        "transitions": sum(lib["transitions"] for lib in libs.values()),
        "transitions_max": sum(lib["transitions_max"] for lib in libs.values()),
        "estimated_storage_gb": round(sum(lib["bytes"] for lib in libs.values()) / 1e9, 2),
        "model": train.preset,
        "train_steps": train.steps,
        "train_windows": train.steps * train.batch_size,
        "eval_episodes_per_env": evaluation.rollouts * evaluation.episodes,
        "runner": refgen.runner,
        "cluster": cfg.cluster,
    }
