"""`ldm run CONFIG --dry-run`: validate a pipeline config and print its plan without running it."""

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
    from ldm.envs import env_spaces
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.stage import envs_by_library

    refgen, train, evaluation = cfg.stage_configs()
    pool = load_pool(refgen.pool, refgen.candidates)
    libs: dict[str, Any] = {}
    total_jobs = total_tr = total_bytes = 0
    for lib, envs in envs_by_library(refgen).items():
        rank_jobs = train_jobs = 0
        bytes_ = 0
        for i, env in enumerate(envs):
            try:
                obs, act = env_spaces(env)
            except Exception:
                continue
            compat = [c for c in pool if c.compatible(obs, act)[0]]
            per_tr = (
                _raw_bytes(obs, act) * COMPRESSION["image" if obs.kind == "image" else "vector"]
            )
            if i < refgen.rank_envs and len(compat) > refgen.top_n:
                rank_jobs += len(compat)
                bytes_ += len(compat) * refgen.rank_budget * per_tr
            n = min(refgen.top_n, len(compat)) * refgen.seeds
            train_jobs += n
            bytes_ += n * refgen.train_budget * per_tr
        tr = rank_jobs * refgen.rank_budget + train_jobs * refgen.train_budget
        libs[lib] = {
            "envs": len(envs),
            "rank_jobs": rank_jobs,
            "train_jobs": train_jobs,
            "transitions": tr,
            "bytes": int(bytes_),
        }
        total_jobs += rank_jobs + train_jobs
        total_tr += tr
        total_bytes += bytes_
    return {
        "name": cfg.name,
        "libraries": libs,
        "jobs": total_jobs,
        "transitions": total_tr,
        "estimated_storage_gb": round(total_bytes / 1e9, 2),
        "model": train.preset,
        "train_steps": train.steps,
        "train_windows": train.steps * train.batch_size,
        "eval_episodes_per_env": evaluation.rollouts * evaluation.episodes,
        "runner": refgen.runner,
        "cluster": cfg.cluster,
    }
