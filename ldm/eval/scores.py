"""Normalised scores: 100 * (R - first10) / (last10 - first10), anchors from the store.

Owns: the choice of an env's reference run, the summary at the paper's thresholds and its
one-line headline; the formula is ldm.data's `normalised_score` (re-exported here). Must not
import: torch, ldm.model, the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ldm.data import RunMeta, Store, normalised_score  # noqa: F401 (re-exported)
from ldm.eval.results import EnvResult, Summary, ThresholdCurve

THRESHOLDS = np.arange(0, 151, 1)


class Reference(NamedTuple):
    """An env's reference run: the best curated one (its anchors normalise the scores)."""

    run_id: str
    meta: RunMeta


def reference_run(store: Store, env_id: str) -> Reference | None:
    """The best curated run of an env (highest last10) and its metadata; None if none."""
    return reference_runs(store, [env_id])[env_id]


def reference_runs(store: Store, env_ids: Sequence[str]) -> dict[str, Reference | None]:
    """`reference_run` of every env, reading the manifest once (per env it would read it
    again: time growing with envs x runs, 1,000 envs of a 10,000-run store took minutes)."""
    best: dict[str, tuple[float, Any] | None] = dict.fromkeys(env_ids)
    for run_id, entry in store.runs(curated_only=True).items():
        if entry.env_id not in best:
            continue
        reader = store.open_run(run_id)
        last10, held = reader.meta.get("last10"), best[entry.env_id]
        if last10 is not None and (held is None or last10 > held[0]):
            best[entry.env_id] = (last10, reader)
    # typed only for the chosen run (a RunMeta of thousands of episodes costs ~10 ms)
    return {e: None if b is None else Reference(b[1].run_id, b[1].record) for e, b in best.items()}


def summarise(envs: Sequence[EnvResult]) -> Summary:
    """Counts at the paper's thresholds (80 and 100% of reference) and the threshold curve."""
    scores = [e.normalised_score for e in envs if e.normalised_score is not None]
    n = len(scores)
    at80 = sum(s >= 80 for s in scores)
    at100 = sum(s >= 100 for s in scores)
    return Summary(
        envs=len(envs),
        scorable=n,
        failed=sum(e.status == "failed" for e in envs),
        at_80=at80,
        at_100=at100,
        share_at_80=at80 / n if n else 0.0,
        share_at_100=at100 / n if n else 0.0,
        median_score=float(np.median(scores)) if scores else None,
        curve=ThresholdCurve(
            tuple(THRESHOLDS.tolist()), tuple(int(sum(s >= t for s in scores)) for t in THRESHOLDS)
        ),
    )


def headline(summary: Summary) -> str:
    """One line: how many scorable envs reach 80% and 100% of reference, and failures."""
    return (
        f"{summary.at_80} of {summary.scorable} envs at >= 80% of reference "
        f"({100 * summary.share_at_80:.0f}%), {summary.at_100} at >= 100% "
        f"({100 * summary.share_at_100:.0f}%)"
        + (f"; {summary.failed} failed" if summary.failed else "")
    )
