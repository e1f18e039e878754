"""The report's page (ldm/eval/report.py): its header, column names, digits and headline."""

from __future__ import annotations

import html
import json

import numpy as np
import torch

from ldm.eval import EvalConfig, write_report
from ldm.eval.report_media import smooth
from ldm.eval.results import EnvResult, EvalResult, Provenance
from ldm.eval.scores import headline, summarise
from ldm.model import LDMPolicy, preset

ENVS = (
    EnvResult("toy-text/FrozenLake-v1", "ok", episodes=20, mean_return=0.0123,
              normalised_score=102.4, reference_run="r1", first10=0.00167, last10=0.012,
              reference_score=100.0),
    EnvResult("mujoco/InvertedDoublePendulum-v5", "ok", episodes=20, mean_return=6862.6,
              normalised_score=95.0, reference_run="r2", first10=49.7, last10=962.9,
              reference_score=94.0, heldout_accuracy=0.49),
)  # fmt: skip
PROVENANCE = Provenance("2026-12-06 18:10", "abc1234", "ldm-small", 1200, 5_250_000)


def _page(tmp_path) -> tuple[str, EvalResult]:
    summary = summarise(ENVS)
    res = EvalResult(
        "ldm", "no-store", EvalConfig(), ENVS, summary, checkpoint="runs/x/train/final",
        summary_checked=summary, provenance=PROVENANCE,
    )  # fmt: skip
    return write_report(res, tmp_path / "report")["html"].read_text(), res


def test_the_header_names_checkpoint_steps_parameters_commit_and_date(tmp_path):
    page, res = _page(tmp_path)
    head = page.split("<h2>")[0]
    for text in ("runs/x/train/final", "ldm-small", "1,200", "5,250,000", "abc1234",
                 "2026-12-06 18:10"):  # fmt: skip
        assert text in head, text
    # the headline once, though the envs checked against their references are the same envs
    assert page.count(html.escape(headline(res.summary))) == 1
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert EvalResult.from_dict(saved).provenance == PROVENANCE


def test_columns_are_readable_and_small_returns_keep_their_digits(tmp_path):
    page, _ = _page(tmp_path)
    for name in ("envs >= 80%", "median score %", "share >= 80% (%)", "mean return",
                 "reference first10 / last10", "cut episodes"):  # fmt: skip
        assert f"<th>{name}</th>" in page.replace("&gt;", ">"), name
    for raw in ("at_80", "median_score", "share_at_80", "env_id"):
        assert f"<th>{raw}</th>" not in page
    assert "<td>0.0123</td>" in page and "0.00167 / 0.012" in page  # was 0.0 and 0.0 / 0.0
    assert "<td>6,863</td>" in page and "49.7 / 962.9" in page


def test_provenance_of_a_policy_counts_its_parameters():
    torch.manual_seed(0)
    policy = LDMPolicy(preset("ldm-tiny", context=32))
    p = Provenance.of(policy)
    assert p.parameters == policy.num_params() and p.steps is None  # never trained
    assert len(p.date) == 16 and Provenance.of(None).parameters is None


def test_smoothing_keeps_the_trend_and_drops_the_noise():
    rng = np.random.default_rng(0)
    trend = np.linspace(0, 100, 400)
    noisy = trend + rng.normal(0, 20, trend.size)
    s = smooth(noisy)
    assert s.shape == noisy.shape
    assert np.std(s - trend) < 0.35 * np.std(noisy - trend)
    assert np.allclose(smooth(np.full(50, 3.0)), 3.0)
