"""Callbacks that join parts the import order keeps apart.

`ldm.train` may not import `ldm.eval` (it sits before it); the training loop's periodic
evaluation in the environments is built here and passed to `train(..., evaluate=...)` by
`ldm train`, `ldm run` and `ldm scale`. Imports `ldm.eval` lazily, inside the callback.
"""

from __future__ import annotations

from typing import Any


def env_evaluation(episodes: int) -> Any:
    """`evaluate(model, store) -> scalars`: the paper's protocol (1 rollout of `episodes`
    episodes per env of the store), as normalised scores and the share of envs >= 80%."""

    def evaluate_in_envs(model: Any, store: Any) -> dict[str, float]:
        from ldm.eval import EvalConfig, evaluate

        res = evaluate(
            model, None, store, EvalConfig(rollouts=1, episodes=episodes), progress=False
        )
        values = {
            f"eval/score/{r.env_id}": r.normalised_score
            for r in res.envs
            if r.normalised_score is not None
        }
        values["eval/share_at_80"] = res.summary.share_at_80
        return values

    return evaluate_in_envs
