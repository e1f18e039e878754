"""Aggregate scores as the field reports them: the interquartile mean (IQM) of per-run scores
over envs, with a 95% stratified-bootstrap confidence interval, computed by `rliable`
(Agarwal et al. 2021).

A run is one rollout of the protocol (its episodes' mean return, normalised): rollouts start
from an empty context and fresh seeds, so they are the independent repeats; the bootstrap
resamples rollouts within each env (the strata). Scores are the paper's reference-normalised
one (percent) and the expert-normalised one (a fraction).

Owns: `iqm_ci` (any (runs, envs) matrix: the wide run's tables call it too), the per-rollout
score matrices of an `EvalResult` and its `Aggregate`s. Imports numpy, rliable (lazily: it
pulls pandas), the records and the two score formulas; must not import torch, ldm.model or the
report.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ldm.data import normalised_score
from ldm.errors import EvalError
from ldm.eval.experts import expert_normalised_score
from ldm.eval.results import Aggregate, EnvResult, EvalResult, Normalisation

#: bootstrap replications: on a 2 x 36 matrix the CI's ends move by < 1% of the IQM between
#: bootstrap seeds at 2,000, in ~1 s on the 2-core VM (rliable's default, 50,000, takes ~23 s)
REPS = 2_000
CONFIDENCE = 0.95


class Interval(NamedTuple):
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float


def iqm_ci(scores: np.ndarray, reps: int = REPS, seed: int = 0) -> Interval:
    """IQM of a (runs, envs) score matrix and its 95% stratified-bootstrap CI (percentile
    method), as rliable's `get_interval_estimates` computes them; `seed` fixes the bootstrap."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.size == 0:
        raise EvalError(
            f"iqm_ci needs a non-empty (runs, envs) matrix of scores, got shape {scores.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise EvalError("iqm_ci: the score matrix holds NaN or inf; leave such envs out")
    from rliable import library as rly
    from rliable import metrics

    # rliable's StratifiedBootstrap draws its indices from numpy's global generator (its
    # `random_state` reaches only arch, which does not draw them): seed that one, and give it
    # back as it was
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch: random_state is deprecated
            point, ci = rly.get_interval_estimates(
                {"x": scores},
                lambda x: np.array([metrics.aggregate_iqm(x)]),
                reps=reps,
                confidence_interval_size=CONFIDENCE,
            )
    finally:
        np.random.set_state(state)
    return Interval(float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0]))


def _rollout_score(e: EnvResult, normalisation: Normalisation, mean: float) -> float | None:
    if normalisation == "reference":
        return normalised_score(mean, e.first10, e.last10)  # type: ignore[arg-type]
    return expert_normalised_score(mean, e.random_score, e.expert_score)  # type: ignore[arg-type]


#: the env-level score each normalisation aggregates (an env without it is left out)
_ENV_SCORE = {"reference": "normalised_score", "expert": "expert_normalised_score"}


def score_matrix(
    result: EvalResult, normalisation: Normalisation
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(rollouts, envs) per-rollout scores of the envs that have this score and an episode in
    every rollout, and those envs' ids."""
    columns, ids = [], []
    for e in result.envs:
        if getattr(e, _ENV_SCORE[normalisation]) is None:
            continue
        if len(e.returns) != result.config.rollouts or not all(e.returns):
            continue
        col = [_rollout_score(e, normalisation, float(np.mean(r))) for r in e.returns]
        if any(c is None for c in col):
            continue
        columns.append(col)
        ids.append(e.env_id)
    matrix = np.asarray(columns, dtype=np.float64).T.reshape(result.config.rollouts, len(ids))
    return matrix, tuple(ids)


def aggregates(result: EvalResult, reps: int = REPS, seed: int = 0) -> tuple[Aggregate, ...]:
    """The result's own IQM and CI per normalisation (none where no env has the score)."""
    out = []
    for normalisation in ("reference", "expert"):
        matrix, ids = score_matrix(result, normalisation)  # type: ignore[arg-type]
        if not ids:
            continue
        iqm = iqm_ci(matrix, reps, seed)
        out.append(
            Aggregate(
                policy=result.policy,
                normalisation=normalisation,  # type: ignore[arg-type]
                iqm=iqm.point,
                ci_low=iqm.low,
                ci_high=iqm.high,
                envs=len(ids),
                runs=matrix.shape[0],
                reps=reps,
            )
        )
    return tuple(out)
