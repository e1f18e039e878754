"""`ldm status DIR`: where a pipeline stands (stages done, jobs, checkpoints, headline).

Owns: the status printout. Imports only ldm.pipeline.state (inside `main`); must not import
torch, the model or the envs (status reads files).
"""

from __future__ import annotations

import json
from pathlib import Path

import tyro


def main(out: tyro.conf.Positional[str]) -> int:
    """Show the stages of a pipeline output directory and their progress.

    Args:
        out: The pipeline's `out` directory.
    """
    from ldm.pipeline.state import STAGES, PipelineState

    d = Path(out)
    if not (d / "pipeline.json").exists():
        print(f"{d}: no pipeline has run here (no pipeline.json)")
        return 1
    state = PipelineState(d)
    print(f"pipeline {state.data.get('config', {}).get('name', '?')} in {d}")
    for stage in STAGES:
        mark = "done" if state.done(stage) else "todo"
        secs = state.seconds(stage)
        extra = ""
        if stage == "refgen":
            jobs = d / "store" / "refgen" / "jobs.json"
            if jobs.exists():
                entries = json.loads(jobs.read_text()).values()
                extra = f"{sum(e['status'] == 'done' for e in entries)} jobs done, {sum(e['status'] == 'failed' for e in entries)} failed"
        elif stage == "train":
            ckpts = (
                sorted((d / "train" / "checkpoints").glob("step-*"))
                if (d / "train").exists()
                else []
            )
            extra = f"latest checkpoint {ckpts[-1].name}" if ckpts else ""
        elif stage == "eval" and state.done("eval"):
            extra = state.data["stages"]["eval"].get("summary", {}).get("headline", "")
        print(f"  {stage:<7} {mark:<5} {'' if secs is None else f'{secs:6.0f} s'}  {extra}")
    return 0
