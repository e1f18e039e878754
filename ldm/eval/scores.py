"""Normalised scores: 100 * (R - first10) / (last10 - first10), anchors from the store, and
beside them the expert-normalised score (R - random) / (expert - random).

Owns: the choice of an env's reference run, the summary at the paper's thresholds (and the
expert-normalised counts) and its one-line headline, and putting expert and random scores
into a result (`attach_expert_scores`); the formulas are ldm.data's `normalised_score`
(re-exported here) and ldm/eval/experts.py's. Must not import: torch, ldm.model, the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np

from ldm.data import RunMeta, Store, normalised_score  # noqa: F401 (re-exported)
from ldm.eval.experts import ExpertScore, expert_normalised_score, load_experts
from ldm.eval.results import EnvResult, EvalResult, Summary, ThresholdCurve

#: the expert-normalised score an env must reach to count as good play (the issue's bar)
EXPERT_BAR = 0.5

THRESHOLDS = np.arange(0, 151, 1)


class Reference(NamedTuple):
    """An env's reference run: the best curated one (its anchors normalise the scores)."""

    run_id: str
    meta: RunMeta


def reference_run(store: Store, env_id: str) -> Reference | None:
    """The best curated run of an env (highest last10) and its metadata; None if none."""
    return reference_runs(store, [env_id])[env_id]


def reference_runs(
    store: Store, env_ids: Sequence[str], runs: Mapping[str, Any] | None = None
) -> dict[str, Reference | None]:
    """`reference_run` of every env, reading the manifest once (per env it would read it
    again: time growing with envs x runs, 1,000 envs of a 10,000-run store took minutes);
    `runs`: the store's runs where the caller has read them already."""
    best: dict[str, tuple[float, Any] | None] = dict.fromkeys(env_ids)
    for run_id, entry in (store.runs() if runs is None else runs).items():
        if entry.env_id not in best or entry.verdict != "pass":
            continue
        last10, held = store.open_run(run_id, episodes=False).meta.last10, best[entry.env_id]
        if last10 is not None and (held is None or last10 > held[0]):
            best[entry.env_id] = (last10, run_id)
    # episodes read only for the chosen run (thousands of them per run cost ~10 ms)
    return {
        e: None if b is None else Reference(b[1], store.open_run(b[1]).meta)
        for e, b in best.items()
    }


def summarise(envs: Sequence[EnvResult]) -> Summary:
    """Counts at the paper's thresholds (80 and 100% of reference) and the threshold curve."""
    scores = [e.normalised_score for e in envs if e.normalised_score is not None]
    n = len(scores)
    expert = [e.expert_normalised_score for e in envs if e.expert_normalised_score is not None]
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
        expert_scorable=len(expert),
        expert_at_50=sum(x >= EXPERT_BAR for x in expert),
        expert_mean=float(np.mean(expert)) if expert else None,
        expert_median=float(np.median(expert)) if expert else None,
    )


def headline(summary: Summary) -> str:
    """One line: how many scorable envs reach 80% and 100% of reference, failures, and the
    expert-normalised mean where envs have one."""
    expert = (
        f"; expert-normalised mean {summary.expert_mean:.2f} over {summary.expert_scorable} "
        f"envs, {summary.expert_at_50} at >= {EXPERT_BAR}"
        if summary.expert_mean is not None
        else ""
    )
    return (
        f"{summary.at_80} of {summary.scorable} envs at >= 80% of reference "
        f"({100 * summary.share_at_80:.0f}%), {summary.at_100} at >= 100% "
        f"({100 * summary.share_at_100:.0f}%)"
        + (f"; {summary.failed} failed" if summary.failed else "")
        + expert
    )


def with_expert_score(e: EnvResult, random: float | None, expert: ExpertScore | None) -> EnvResult:
    """One env's result with its random and expert scores and its expert-normalised score
    (None where either is missing or the env has no episode)."""
    score = None
    if expert is not None and random is not None and e.mean_return is not None:
        score = expert_normalised_score(e.mean_return, random, expert.expert)
    return replace(
        e,
        random_score=random,
        expert_score=None if expert is None else expert.expert,
        expert_source=None if expert is None else f"{expert.source}: {expert.ref}",
        expert_normalised_score=score,
    )


def attach_expert_scores(
    result: EvalResult,
    randoms: Mapping[str, float | None],
    experts: Mapping[str, ExpertScore] | None = None,
) -> EvalResult:
    """The result with each env's random score (`randoms`, by env id), its published expert
    score (`experts`, default ldm/eval/experts.toml) and expert-normalised score, and the
    summary counted again."""
    experts = load_experts() if experts is None else experts
    envs = tuple(
        with_expert_score(e, randoms.get(e.env_id), experts.get(e.env_id)) for e in result.envs
    )
    return replace(result, envs=envs, summary=summarise(envs))
