"""The paper's reference anchors: the mean return of a run's first and last 10% of episodes
(`anchors`, by the one rule `tenth`), and the reference-normalised score on them
(`normalised_score`). Curation, refgen's ranking, autobudget, the evaluation and its report
all compute them here.

Imports numpy and `ldm.errors` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldm.errors import StoreError


def tenth(episodes: int) -> int:
    """How many episodes the paper's "first / last 10%" takes of `episodes` (at least one).
    The anchors, curation's t-test, refgen's ranking and the report all use this rule."""
    return max(1, int(np.ceil(0.1 * episodes)))


def split_tenths(returns: Any) -> tuple[np.ndarray, np.ndarray]:
    """The returns of the first and of the last 10% of episodes (at least one each)."""
    r = np.asarray(returns, dtype=np.float64)
    k = tenth(r.size)
    return r[:k], r[-k:]


def normalised_score(mean_return: float, first10: float, last10: float) -> float | None:
    """Reference-normalised score in percent, 100 x (R - first10) / (last10 - first10), on a
    run's `anchors`; None when the anchors are equal (not scorable). The evaluation scores
    the LDM with it, curation a reference's deterministic check."""
    if np.isclose(last10, first10):
        return None
    return float(100.0 * (mean_return - first10) / (last10 - first10))


def anchors(returns: list[float] | np.ndarray) -> tuple[float, float]:
    """Normalisation anchors: mean return of the first and of the last 10% of episodes
    (at least one episode each). Everybody computes them with this function."""
    if np.asarray(returns).size == 0:
        raise StoreError("cannot compute anchors: the run has no finished episode")
    first, last = split_tenths(returns)
    return float(first.mean()), float(last.mean())
