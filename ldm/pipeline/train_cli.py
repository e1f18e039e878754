"""`ldm train`: train an LDM policy on a store (flags, or a TOML file with --config).

It lives in ldm/pipeline because it plugs ldm.eval's protocol into the loop as its periodic
evaluation (`eval_every`), which ldm.train itself may not import.

Imports tyro and ldm.train.config; the loop and the evaluation hook inside `main`.
"""

from __future__ import annotations

import tyro

from ldm.train.config import TrainConfig


def main(cfg: tyro.conf.OmitArgPrefixes[TrainConfig], config: str | None = None) -> int:
    """Train an LDM policy by next-action prediction. Works unchanged under torchrun.

    Args:
        cfg: Training settings (flags override nothing when --config is given).
        config: TOML file with the settings (a [train] table or top-level keys).
    """
    from ldm.pipeline.hooks import env_evaluation
    from ldm.train.loop import train

    settings = TrainConfig.from_toml(config) if config else cfg
    final = train(settings, evaluate=env_evaluation(settings.eval_episodes))
    print(f"final checkpoint: {final}")
    return 0
