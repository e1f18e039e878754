"""Evaluation by the paper's protocol, normalised scores, threshold curve and report."""

from ldm.eval.evaluate import evaluate
from ldm.eval.protocol import EvalConfig
from ldm.eval.report import write_report

__all__ = ["EvalConfig", "evaluate", "write_report"]
