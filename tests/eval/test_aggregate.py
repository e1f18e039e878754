"""ldm/eval/aggregate.py: IQM with a 95% stratified-bootstrap CI (rliable), per normalisation,
for the LDM and the references; and where they show (results.json, report, --compare)."""

import html
import json

import numpy as np
import pytest

from ldm.errors import EvalError
from ldm.eval import EvalConfig, write_report
from ldm.eval.aggregate import aggregates, iqm_ci, score_matrix
from ldm.eval.experts import ExpertScore
from ldm.eval.report import attach_references, compare_text
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import attach_expert_scores, summarise


def _numpy_stratified_iqm_ci(x, reps, seed):
    """An independent stratified bootstrap: runs resampled within each env, the IQM of each
    replicate (the middle half of all scores), the 2.5 and 97.5 percentiles."""
    rng = np.random.default_rng(seed)
    runs, envs = x.shape
    stats = []
    for _ in range(reps):
        idx = rng.integers(0, runs, size=(runs, envs))
        s = np.sort(np.take_along_axis(x, idx, axis=0).ravel())
        k = int(0.25 * s.size)
        stats.append(s[k : s.size - k].mean())
    return np.percentile(stats, [2.5, 97.5])


def test_iqm_and_its_ci_on_a_fixed_matrix():
    x = np.arange(1.0, 9.0).reshape(2, 4)  # 8 scores: the IQM is the mean of 3, 4, 5, 6
    assert iqm_ci(x, reps=500).point == pytest.approx(4.5)
    y = np.random.default_rng(3).normal(50, 20, size=(3, 12))
    got = iqm_ci(y, reps=2000, seed=0)
    s = np.sort(y.ravel())
    assert got.point == pytest.approx(s[9:27].mean())  # 36 scores, 9 cut at each end
    low, high = _numpy_stratified_iqm_ci(y, 4000, seed=1)
    assert got.low == pytest.approx(low, abs=1.0) and got.high == pytest.approx(high, abs=1.0)
    assert got.low < got.point < got.high
    assert iqm_ci(y, reps=2000, seed=0) == got  # the seed fixes the bootstrap
    with pytest.raises(EvalError, match=r"non-empty \(runs, envs\) matrix"):
        iqm_ci(np.zeros(4))
    with pytest.raises(EvalError, match="NaN or inf"):
        iqm_ci(np.array([[1.0, np.nan]]))


@pytest.mark.parametrize("shape", [(1, 1), (2, 4), (3, 12), (5, 7), (20, 301)])
def test_the_interval_is_rliables_to_the_bit(shape, monkeypatch):
    """ldm computes the IQM and its stratified-bootstrap CI itself (rliable's import cost
    every evaluation seconds): the same numbers as rliable's `get_interval_estimates` after
    `np.random.seed(seed)`, also when the replicates are drawn in several blocks."""
    from rliable import library as rly
    from rliable import metrics

    x = np.random.default_rng(sum(shape)).normal(50, 20, size=shape)
    for seed in (0, 7):
        np.random.seed(seed)
        point, ci = rly.get_interval_estimates(
            {"x": x}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=300
        )
        state = np.random.get_state()[1].copy()
        want = (point["x"][0], ci["x"][0, 0], ci["x"][1, 0])
        assert tuple(iqm_ci(x, reps=300, seed=seed)) == want
        monkeypatch.setattr("ldm.eval.aggregate._BLOCK", x.size * 7)  # 7 replicates a block
        assert tuple(iqm_ci(x, reps=300, seed=seed)) == want
        monkeypatch.undo()
        assert np.array_equal(np.random.get_state()[1], state)  # the global one untouched


def _env(env_id, returns, first10=0.0, last10=100.0):
    flat = [r for ro in returns for r in ro]
    mean = float(np.mean(flat))
    return EnvResult(
        env_id,
        "ok",
        returns=tuple(tuple(r) for r in returns),
        episodes=len(flat),
        mean_return=mean,
        first10=first10,
        last10=last10,
        normalised_score=100 * (mean - first10) / (last10 - first10),
    )


def _result(policy, envs):
    return EvalResult(
        policy=policy,
        store="/tmp/s",
        config=EvalConfig(rollouts=2, episodes=2),
        envs=tuple(envs),
        summary=summarise(envs),
    )


EXPERTS = {
    "a/A-v0": ExpertScore("a/A-v0", 200.0, "zoo", "a table"),
    "a/B-v0": ExpertScore("a/B-v0", 10.0, "optimum", "a proof"),
}


def test_per_rollout_scores_aggregates_and_where_they_show(tmp_path):
    ldm = _result(
        "ldm",
        [
            _env("a/A-v0", [[40.0, 60.0], [80.0, 100.0]]),  # rollout means 50 and 90
            _env("a/B-v0", [[5.0, 5.0], [6.0, 8.0]], first10=1.0, last10=9.0),
            _env("a/C-v0", [[1.0, 1.0], []]),  # a rollout without an episode: left out
        ],
    )
    ldm = attach_expert_scores(ldm, {"a/A-v0": 0.0, "a/B-v0": 0.0, "a/C-v0": 0.0}, EXPERTS)
    a = ldm.env("a/A-v0")
    assert (a.random_score, a.expert_score) == (0.0, 200.0)
    assert a.expert_normalised_score == pytest.approx(70 / 200)
    assert a.expert_source == "zoo: a table" and ldm.env("a/C-v0").expert_score is None
    ref, ids = score_matrix(ldm, "reference")
    assert ids == ("a/A-v0", "a/B-v0")
    np.testing.assert_allclose(ref, [[50.0, 50.0], [90.0, 75.0]])
    exp, _ = score_matrix(ldm, "expert")
    np.testing.assert_allclose(exp, [[0.25, 0.5], [0.45, 0.7]])
    assert ldm.summary.expert_scorable == 2 and ldm.summary.expert_at_50 == 1
    assert ldm.summary.expert_mean == pytest.approx((0.35 + 0.6) / 2)

    ldm = EvalResult(**{**ldm.__dict__, "aggregates": aggregates(ldm, reps=500)})
    agg = ldm.aggregate("ldm", "expert")
    assert agg.iqm == pytest.approx(np.mean([0.45, 0.5]))  # the middle half of 4 scores
    assert (agg.envs, agg.runs, agg.reps) == (2, 2, 500)
    assert ldm.aggregate("ldm", "reference").iqm == pytest.approx(62.5)

    refs = _result("references", [_env("a/A-v0", [[100.0, 100.0], [100.0, 100.0]])])
    refs = attach_expert_scores(refs, {"a/A-v0": 0.0}, EXPERTS)
    refs = EvalResult(**{**refs.__dict__, "aggregates": aggregates(refs, reps=500)})
    both = attach_references(ldm, refs)
    assert both.env("a/A-v0").reference_expert_normalised_score == 0.5
    assert both.aggregate("references", "expert").iqm == 0.5
    assert both.aggregate("ldm", "expert") == agg

    paths = write_report(both, tmp_path / "report")
    saved = json.loads(paths["results"].read_text())
    assert {(x["policy"], x["normalisation"]) for x in saved["aggregates"]} == {
        ("ldm", "reference"),
        ("ldm", "expert"),
        ("references", "reference"),
        ("references", "expert"),
    }
    env_a = next(e for e in saved["envs"] if e["env_id"] == "a/A-v0")
    assert env_a["expert_normalised_score"] == pytest.approx(0.35)
    assert env_a["random_score"] == 0.0 and env_a["expert_score"] == 200.0
    assert saved["summary"]["expert_mean"] == pytest.approx(0.475)
    assert EvalResult.load(paths["results"]) == both
    page = paths["html"].read_text()
    for column in ("expert-normalised", "reference's expert-normalised", "random", "IQM", "95% CI"):
        assert f"<th>{html.escape(column)}</th>" in page
    assert f"[{agg.ci_low:.2f}, {agg.ci_high:.2f}]" in page
    text = compare_text(both, ldm)
    assert "A exp" in text and "expert-normalised mean 0.47 over 2 envs" in text
    assert "a/A-v0" in text and "    0.35     0.35     0.00" in text
