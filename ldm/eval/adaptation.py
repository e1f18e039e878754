"""Zero-shot and in-context scores of held-out envs, from an evaluation by the protocol.

The protocol keeps the LDM's context across the episodes of a rollout (as the paper deploys
it), so a model that adapts in context plays a rollout's last episodes better than its first
ones. For each env: the score (the protocol's normalised score), the score of each rollout's
first `span` episodes and of its last `span` (span = 30% of the episodes, at least 1), and the
in-context gain, last minus first, in points of the reference's score. Envs are grouped by
kind (an unseen env of a seen library, or an unseen library), reported apart.

Owns: `InContextScore`, `HeldoutReport`, `in_context_report`. Reads `EvalResult` records;
must not import torch, ldm.model, ldm.train or ldm.pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ldm.atomic import write_json_atomic
from ldm.data import normalised_score
from ldm.eval.results import EnvResult, EvalResult

SPAN_SHARE = 0.3
"""The share of a rollout's episodes taken as its "first" and its "last" ones."""


@dataclass(frozen=True)
class InContextScore:
    """One held-out env's zero-shot score and in-context gain."""

    env_id: str
    kind: str
    score: float | None
    """The protocol's normalised score (% of reference) over every episode."""
    first: float | None
    """The score of each rollout's first `span` episodes (mean over rollouts)."""
    last: float | None
    """The score of each rollout's last `span` episodes."""
    gain: float | None
    """last - first, in points of the reference's score (None when not scorable)."""
    span: int


@dataclass(frozen=True)
class KindSummary:
    """The median and mean over the scorable envs of one kind. The median is the headline:
    % of reference explodes where a reference barely improved (a zero-shot 4.4M% on one env
    made a mean of 870,953 over five)."""

    kind: str
    envs: int
    scorable: int
    mean_score: float | None
    mean_gain: float | None
    median_score: float | None = None
    median_gain: float | None = None


@dataclass(frozen=True)
class HeldoutReport:
    envs: tuple[InContextScore, ...]
    kinds: tuple[KindSummary, ...]

    def save(self, path: str | Path) -> Path:
        write_json_atomic(Path(path), asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> HeldoutReport:
        d = json.loads(Path(path).read_text())
        return cls(
            tuple(InContextScore(**e) for e in d["envs"]),
            tuple(KindSummary(**k) for k in d["kinds"]),
        )

    def table(self) -> str:
        """A plain-text table: one line per env, then one per kind."""
        f = _fmt
        lines = [f"{'env':<40} {'kind':<15} {'score':>6} {'first':>6} {'last':>6} {'gain':>6}"]
        for e in self.envs:
            lines.append(
                f"{e.env_id:<40} {e.kind:<15} {f(e.score)} {f(e.first)} {f(e.last)} {f(e.gain)}"
            )
        for k in self.kinds:
            lines.append(
                f"{k.kind}: {k.scorable} of {k.envs} envs scorable, median score "
                f"{_fmt(k.median_score).strip()} (mean {_fmt(k.mean_score).strip()}), median "
                f"in-context gain {_fmt(k.median_gain).strip()} (mean {_fmt(k.mean_gain).strip()})"
            )
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return f"{'-':>6}" if x is None else f"{x:6.1f}"


def _span_score(
    env: EnvResult, pick: Callable[[tuple[float, ...]], tuple[float, ...]]
) -> float | None:
    if env.first10 is None or env.last10 is None:
        return None
    rets = [r for rollout in env.returns for r in pick(rollout)]
    return normalised_score(float(np.mean(rets)), env.first10, env.last10) if rets else None


def in_context_score(env: EnvResult, kind: str) -> InContextScore:
    """One env's score, first- and last-episodes scores and in-context gain."""
    shortest = min((len(r) for r in env.returns), default=0)
    span = max(1, int(SPAN_SHARE * shortest))
    first = _span_score(env, lambda r: r[:span]) if shortest >= 2 else None
    last = _span_score(env, lambda r: r[-span:]) if shortest >= 2 else None
    gain = None if first is None or last is None else last - first
    return InContextScore(env.env_id, kind, env.normalised_score, first, last, gain, span)


def in_context_report(results: EvalResult, kind: Callable[[str], str]) -> HeldoutReport:
    """The held-out report of an evaluation; `kind(env_id)` names each env's kind."""
    envs = tuple(in_context_score(e, kind(e.env_id)) for e in results.envs)
    kinds = []
    for k in sorted({e.kind for e in envs}):
        mine = [e for e in envs if e.kind == k]
        scores = [e.score for e in mine if e.score is not None]
        gains = [e.gain for e in mine if e.gain is not None]
        kinds.append(
            KindSummary(
                k,
                len(mine),
                len(scores),
                float(np.mean(scores)) if scores else None,
                float(np.mean(gains)) if gains else None,
                float(np.median(scores)) if scores else None,
                float(np.median(gains)) if gains else None,
            )
        )
    return HeldoutReport(envs, tuple(kinds))
