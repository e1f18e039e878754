"""`ldm train`: train an LDM policy on a store (flags, or a TOML file with --config).

It lives in ldm/pipeline because it plugs ldm.eval's protocol into the loop as its periodic
evaluation (`eval_every`), which ldm.train itself may not import.

Owns: the command's flags (`TrainArgs`) and how they meet a --config file (`run_cli`: the
file's settings are the defaults, every flag given overrides them). Imports tyro and
ldm.train.config; the loop and the evaluation hook inside `main`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import tomllib
import tyro

from ldm.errors import ConfigError
from ldm.train.config import TrainConfig


@dataclass(frozen=True)
class TrainArgs:
    """`ldm train`'s flags: the training settings, over a TOML file's when --config is given."""

    cfg: tyro.conf.OmitArgPrefixes[TrainConfig] = field(default_factory=TrainConfig)
    """Training settings; a flag given overrides the --config file's value."""
    config: str | None = None
    """TOML file with the settings (a [train] table or top-level keys)."""


def config_path(args: Sequence[str]) -> str | None:
    """The value of `--config F` / `--config=F` in `args` (the last one given), if any."""
    path = None
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
    return path


def run_cli(prog: str, args: Sequence[str]) -> int:
    """Parse the flags with the --config file's settings as their defaults, then train."""
    path = config_path(args)
    default = TrainArgs()
    if path is not None:
        try:
            default = TrainArgs(TrainConfig.from_toml(path), path)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"--config {path}: cannot read it ({e})") from None
    return main(tyro.cli(TrainArgs, prog=prog, args=list(args), default=default))


def main(args: TrainArgs) -> int:
    """Train an LDM policy by next-action prediction. Works unchanged under torchrun."""
    from ldm.pipeline.hooks import env_evaluation
    from ldm.train.loop import train

    final = train(args.cfg, evaluate=env_evaluation(args.cfg.eval_episodes))
    print(f"final checkpoint: {final}")
    return 0
