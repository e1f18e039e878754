"""`ldm run CONFIG [--from STAGE] [--dry-run]`: the whole pipeline from one TOML file.

Owns: the `ldm run` flags. Imports the pipeline's stage names, the pipeline inside `main`;
must not import torch at module import (so `--help` and `--dry-run` stay light).
"""

from __future__ import annotations

import json
from typing import Annotated

import tyro

from ldm.pipeline.state import Stage


def main(
    config: tyro.conf.Positional[str],
    from_: Annotated[Stage | None, tyro.conf.arg(name="from")] = None,
    dry_run: bool = False,
    profile: str | None = None,
    out: str | None = None,
) -> int:
    """Run reference generation, training and evaluation; rerun to resume after an interruption.

    Args:
        config: Pipeline TOML file (e.g. configs/quickstart.toml).
        from_: Rerun from this stage (refgen, train, eval, unseen, heldout, adapt), forgetting its outputs and later ones.
        dry_run: Validate the config and print the plan (jobs, transitions, storage) only.
        profile: A named profile of the config (`[profiles.NAME]`, e.g. gpu) merged over it.
        out: Output directory instead of the config's `out` (e.g. outside the source tree).
    """
    from ldm.pipeline.config import PipelineConfig
    from ldm.pipeline.run import run_pipeline

    if dry_run:
        from ldm.pipeline.plan import plan

        p = plan(PipelineConfig.load(config, profile, out))
        print(json.dumps(p.to_dict(), indent=1))
        if p.selection is not None:  # the pick and why each other env is out, one a line
            print("\n".join(p.selection.lines()))
        print(p.headline())
        return 0
    run_pipeline(config, start=from_, profile=profile, out=out)
    return 0
