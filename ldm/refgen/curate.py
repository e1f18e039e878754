"""Welch tests, relabelling and curation.

- `welch_greater(a, b)`: one-tailed Welch t-test that `a` is greater than `b`, with the
  degenerate cases made explicit (too few episodes; identical constant returns).
- `relabel_run`: the final policy, deterministic, in large batches over every recorded
  observation -> the reference-action column.
- `curate_env`: mark (never delete) runs without significant improvement (first vs last 10%
  of training episodes), runs below 95% of the best run on the same env, and, with a
  `check_floor`, runs whose deterministic policy played below that share of their own
  improvement (the check of ldm/refgen/check.py).

Owns: the significance test, relabelling and the curation verdicts (written as `Curation`
records through the store), including the deterministic check's (scored by ldm.data's
`normalised_score`, the protocol's formula). Imports numpy, scipy (lazily), ldm.data and
the SB3 classes via ldm.refgen.candidates; must not import ldm.envs (relabelling replays
recorded observations), ldm.model or later parts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ldm.data import Curation, Store, normalised_score
from ldm.data.anchors import split_tenths


@dataclass(frozen=True)
class WelchResult:
    greater: bool
    """True when `a` is significantly greater than `b` at the given alpha."""
    p: float | None
    """One-tailed p-value, None when the test is undefined."""
    reason: str
    """Why, in words (including the degenerate cases)."""


def welch_greater(a: Any, b: Any, alpha: float = 0.05) -> WelchResult:
    """One-tailed Welch t-test H1: mean(a) > mean(b)."""
    from scipy.stats import ttest_ind

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return WelchResult(
            False, None, f"too few episodes for a t-test ({a.size} vs {b.size}; need >= 2 each)"
        )
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        # zero variance on both sides: the t statistic is undefined (NaN); decide on the means
        if a[0] > b[0]:
            return WelchResult(True, 0.0, "constant returns, strictly higher")
        return WelchResult(False, None, "constant returns, not higher")
    with warnings.catch_warnings():
        # nearly constant returns (e.g. 500 in every episode): scipy warns of precision loss;
        # the p-value is still right, and a NaN is handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    if np.isnan(p):
        return WelchResult(False, None, "t-test undefined (NaN)")
    return WelchResult(p < alpha, p, f"p={p:.3g} {'<' if p < alpha else '>='} alpha={alpha}")


def relabel_run(store: Store, run_id: str, batch_size: int = 4096, model: Any = None) -> int:
    """Write the final policy's deterministic actions for every observation; returns count.
    `model`: the final policy itself where the caller holds it (the job that trained it),
    else it is loaded from the run's policy file."""
    reader = store.open_run(run_id, episodes=False)
    meta = reader.meta
    if model is None:
        from ldm.refgen.candidates import algorithm_class

        model = algorithm_class(meta.algorithm).load(
            str(Path(store.path) / meta.extra["policy_file"]), device="cpu"
        )
    columns = {}
    for k in range(reader.num_streams):
        n = reader.length(k)
        parts = []
        for a in range(0, n, batch_size):
            obs = reader.read(k, "obs", a, min(n, a + batch_size))
            actions, _ = model.predict(obs, deterministic=True)
            parts.append(np.asarray(actions).reshape(len(obs), *np.asarray(actions).shape[1:]))
        if n:
            columns[k] = np.concatenate(parts)
    store.write_reference_columns(run_id, columns, {"relabelled": True})
    return sum(reader.length(k) for k in range(reader.num_streams))


def best_threshold(best: float, start: float, best_fraction: float = 0.95) -> float:
    """The lowest final return that counts as within `best_fraction` of the best run.

    "95% of the best" is read on the scale of the env's returns: the band below the best is
    (1 - fraction) x max(|best|, best - start), with `start` the lowest first-10% mean of the
    env's runs. For positive returns that is the plain 95% rule; for negative returns (costs,
    e.g. -1,500 -> -200) it stays a band below the best instead of a fraction of a negative
    number, and a best near 0 (e.g. rewards that climb from -300 to 0.1) does not shrink the
    band to nothing.
    """
    span = max(abs(best), best - start)
    return best - (1.0 - best_fraction) * span


def curate_env(
    store: Store,
    env_id: str,
    alpha: float = 0.05,
    best_fraction: float = 0.95,
    only: set[str] | None = None,
    check_floor: float | None = None,
) -> dict[str, Curation]:
    """Curation verdicts for the runs of an env (or those of them in `only`); written into
    each run's metadata. With `check_floor`, a run with `check_returns` whose check scores
    below it fails (a run without them, recorded unchecked, is not judged on it)."""
    runs = {r: e for r, e in store.runs(env_id=env_id).items() if only is None or r in only}
    metas = {rid: store.open_run(rid).meta for rid in runs}
    finals = {
        rid: float(split_tenths(m.episode_returns)[1].mean())
        for rid, m in metas.items()
        if m.episode_returns
    }
    if not finals:
        return {}
    best = max(finals.values())
    starts = [
        split_tenths(m.episode_returns)[0].mean() for m in metas.values() if m.episode_returns
    ]
    threshold = best_threshold(best, float(min(starts)), best_fraction)
    verdicts: dict[str, Curation] = {}
    for rid, m in metas.items():
        reasons = []
        if not m.episode_returns:
            reasons.append("no finished episode")
        else:
            first, last = split_tenths(m.episode_returns)
            test = welch_greater(last, first, alpha)
            if not test.greater:
                reasons.append(f"no significant improvement ({test.reason})")
            if finals[rid] < threshold:
                reasons.append(
                    f"final return {finals[rid]:.4g} below {best_fraction:.0%} of the best run ({best:.4g})"
                )
            checked = m.extra.get("check_returns")
            score = (
                normalised_score(float(np.mean(checked)), first.mean(), last.mean())
                if checked and check_floor is not None
                else None
            )
            if score is not None and score < check_floor:
                reasons.append(
                    f"its deterministic policy scored {score:.0f}% of its training improvement "
                    f"in {len(checked)} episodes (mean {np.mean(checked):.4g}; floor "
                    f"{check_floor:g}%)"
                )
        if not m.relabelled:
            reasons.append("not relabelled")
        verdict = Curation(
            "fail" if reasons else "pass", tuple(reasons), finals.get(rid), best_on_env=best
        )
        store.update_meta(rid, {"curation": verdict})
        verdicts[rid] = verdict
    return verdicts
