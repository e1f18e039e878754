"""Aggregate scores as the field reports them: the interquartile mean (IQM) of per-run scores
over envs, with a 95% stratified-bootstrap confidence interval, as `rliable` (Agarwal et al.
2021) computes them, to the bit (tests/eval/test_aggregate.py compares the two): importing
rliable cost every evaluation 7-16 s on the loaded 2-core VM (arch, scipy.stats, pandas),
for ~30 lines of numpy.

A run is one rollout of the protocol (its episodes' mean return, normalised): rollouts start
from an empty context and fresh seeds, so they are the independent repeats; the bootstrap
resamples rollouts within each env (the strata). Scores are the paper's reference-normalised
one (percent) and the expert-normalised one (a fraction).

Owns: `iqm_ci` (any (runs, envs) matrix: the wide run's tables call it too), the per-rollout
score matrices of an `EvalResult` and its `Aggregate`s. Imports numpy, the records and the
two score formulas; must not import rliable (see above), torch, ldm.model or the report.
"""

from __future__ import annotations

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
#: scores resampled at once (~32 MB of indices), however many envs
_BLOCK = 1 << 22


class Interval(NamedTuple):
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float


def iqm_ci(scores: np.ndarray, reps: int = REPS, seed: int = 0) -> Interval:
    """IQM of a (runs, envs) score matrix and its 95% stratified-bootstrap CI (percentile
    method), as rliable's `get_interval_estimates` computes them after `np.random.seed(seed)`
    (`seed` fixes the bootstrap; numpy's global generator is not touched)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.size == 0:
        raise EvalError(
            f"iqm_ci needs a non-empty (runs, envs) matrix of scores, got shape {scores.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise EvalError("iqm_ci: the score matrix holds NaN or inf; leave such envs out")
    # rliable's StratifiedBootstrap: per replicate, `np.random.choice(runs, (runs, envs))` from
    # numpy's legacy global generator (its `random_state` reaches only arch, which draws
    # nothing), the runs of each env resampled; drawn here from a RandomState seeded alike,
    # replicates drawn in blocks (the same stream as one by one: each draw is one 32-bit word)
    runs, envs = scores.shape
    rng, block = np.random.RandomState(seed), max(1, _BLOCK // scores.size)
    replicates = np.empty(reps)
    for a in range(0, reps, block):
        idx = rng.randint(0, runs, size=(min(block, reps - a), runs, envs))
        replicates[a : a + len(idx)] = iqm(scores[idx, np.arange(envs)].reshape(len(idx), -1))
    # arch's percentile interval: np.percentile at 100 * alpha and 100 * (1 - alpha)
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.percentile(replicates, [100 * alpha, 100 * (1.0 - alpha)])
    return Interval(float(iqm(scores.reshape(1, -1))[0]), float(low), float(high))


def iqm(rows: np.ndarray) -> np.ndarray:
    """The interquartile mean of each row: 25% cut at each end, as `scipy.stats.trim_mean(
    row, 0.25)` (rliable's `aggregate_iqm`) computes it, partition and mean alike."""
    n = rows.shape[1]
    cut = int(0.25 * n)
    return np.partition(rows, (cut, n - cut - 1), axis=1)[:, cut : n - cut].mean(axis=1)


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
