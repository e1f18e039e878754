"""Evaluation by the paper's protocol, normalised scores, threshold curve and report.

Owns nothing itself: re-exports `evaluate`, `EvalConfig` and `write_report`. Must not import
torch at package import beyond what those modules need, nor ldm.train or ldm.pipeline.
"""

from ldm.eval.config import EvalConfig
from ldm.eval.evaluate import evaluate
from ldm.eval.report import write_report

__all__ = ["EvalConfig", "evaluate", "write_report"]
