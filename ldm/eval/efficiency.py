"""The data-efficiency sweep's records and its verdict: score against K reference episodes.

A `Cell` is one (held-out env, K, learner) measurement: the protocol's score (% of the env's
reference) of a learner given the env's first K reference episodes, played from seeds no
training used; the fine-tuned cell at the forgetting K also carries `Forgetting` (the share of
pretraining envs >= 80% before and after). `EfficiencyReport` gathers the cells with each
env's zero-shot score and computes the `Verdict` of issue 35's bar:

- at K = `bar_k` the fine-tuned LDM scores higher than from scratch on >= 75% of the envs;
- it reaches `threshold` (80% of reference) with fewer episodes than from scratch (never
  reaching it counts as more than any K) on >= 50% of them;
- on >= 8 envs from >= 4 libraries, both kinds (unseen env, unseen library) present.

Owns the records, `verdict` and the text table. Imports the standard library and ldm.atomic
only; must not import torch, ldm.model, ldm.train or ldm.pipeline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ldm.atomic import write_json_atomic

#: the bar of issue 35, written down once
BAR_BEATS_SHARE = 0.75
BAR_FEWER_SHARE = 0.5
BAR_MIN_ENVS = 8
BAR_MIN_LIBRARIES = 4
BAR_KINDS = ("unseen env", "unseen library")


@dataclass(frozen=True)
class Forgetting:
    """The fine-tuned model on the pretraining envs, against the pretrained one."""

    envs: int
    before: float
    """Share of the pretraining envs >= 80% of reference, the pretrained LDM (eval stage)."""
    after: float
    """The same share for the fine-tuned model, the same protocol and seeds."""


@dataclass(frozen=True)
class Cell:
    """One learner on one held-out env with K reference episodes."""

    env_id: str
    kind: str
    k: int
    learner: str
    score: float | None
    """The protocol's score (% of reference) on seeds never used in training; None: not
    scorable or not measured (`reason`)."""
    reason: str = ""
    """Why there is no score (e.g. fewer than K episodes in the env's runs)."""
    seconds: float = 0.0
    """Wall-clock time of the cell: training (if any) and evaluation."""
    forgetting: Forgetting | None = None

    @property
    def key(self) -> str:
        """The cell's file name stem: unique per (env, K, learner)."""
        return f"{self.env_id.replace('/', '__')}__k{self.k}__{self.learner}"

    def save(self, directory: Path) -> Path:
        path = directory / f"{self.key}.json"
        write_json_atomic(path, asdict(self))
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cell:
        f = d.get("forgetting")
        return cls(**{**d, "forgetting": Forgetting(**f) if f else None})


def cell_key(env_id: str, k: int, learner: str) -> str:
    return Cell(env_id, "", k, learner, None).key


@dataclass(frozen=True)
class EnvVerdict:
    """One env's two comparisons."""

    env_id: str
    kind: str
    beats: bool | None
    """Fine-tuned > scratch at bar_k (None: one of the two has no score there)."""
    finetune_to_threshold: int | None
    """The fewest K (of those measured) at which the fine-tuned LDM scores >= threshold."""
    scratch_to_threshold: int | None
    fewer: bool | None
    """Fine-tuned reaches the threshold with fewer episodes than scratch (None: unmeasured)."""


@dataclass(frozen=True)
class Verdict:
    envs: tuple[EnvVerdict, ...]
    bar_k: int
    threshold: float
    beats_share: float | None
    fewer_share: float | None
    libraries: int
    kinds: tuple[str, ...]
    passed: bool
    why: str
    """What the verdict rests on, one line."""


def _to_threshold(scores: dict[int, float | None], threshold: float) -> int | None:
    reached = [k for k, s in sorted(scores.items()) if s is not None and s >= threshold]
    return reached[0] if reached else None


def env_verdict(cells: list[Cell], bar_k: int, threshold: float) -> EnvVerdict:
    """One env's comparison of fine-tuning against from scratch (`cells`: that env's)."""
    by = {(c.learner, c.k): c.score for c in cells}
    ft, sc = by.get(("finetune", bar_k)), by.get(("scratch", bar_k))
    beats = None if ft is None or sc is None else ft > sc
    curves = {
        x: {c.k: c.score for c in cells if c.learner == x and not c.reason}
        for x in ("finetune", "scratch")
    }
    ft_k, sc_k = (_to_threshold(curves[x], threshold) for x in ("finetune", "scratch"))
    measured = curves["finetune"] and curves["scratch"]
    fewer = None if not measured else ft_k is not None and (sc_k is None or ft_k < sc_k)
    return EnvVerdict(cells[0].env_id, cells[0].kind, beats, ft_k, sc_k, fewer)


def _share(values: list[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def verdict(cells: list[Cell], bar_k: int = 5, threshold: float = 80.0) -> Verdict:
    """Issue 35's bar over the sweep's cells (see the module docstring)."""
    env_ids = sorted({c.env_id for c in cells})
    envs = tuple(
        env_verdict([c for c in cells if c.env_id == e], bar_k, threshold) for e in env_ids
    )
    beats = _share([e.beats for e in envs])
    fewer = _share([e.fewer for e in envs])
    measured = [e for e in envs if e.beats is not None]
    libraries = len({e.env_id.split("/", 1)[0] for e in measured})
    kinds = tuple(sorted({e.kind for e in measured}))
    shortfalls = [
        f"{len(measured)} envs measured at K={bar_k} (< {BAR_MIN_ENVS})"
        if len(measured) < BAR_MIN_ENVS
        else "",
        f"{libraries} libraries (< {BAR_MIN_LIBRARIES})" if libraries < BAR_MIN_LIBRARIES else "",
        "one kind only" if set(kinds) != set(BAR_KINDS) else "",
        f"fine-tuned beats scratch on {_pct(beats)} (< 75%)"
        if beats is None or beats < BAR_BEATS_SHARE
        else "",
        f"fewer episodes to {threshold:g}% on {_pct(fewer)} (< 50%)"
        if fewer is None or fewer < BAR_FEWER_SHARE
        else "",
    ]
    missed = [s for s in shortfalls if s]
    why = (
        "not met: " + "; ".join(missed)
        if missed
        else f"met: fine-tuned beats scratch at K={bar_k} on {_pct(beats)}, fewer episodes to "
        f"{threshold:g}% on {_pct(fewer)}, {len(measured)} envs of {libraries} libraries"
    )
    return Verdict(envs, bar_k, threshold, beats, fewer, libraries, kinds, not missed, why)


def _pct(share: float | None) -> str:
    return "no env" if share is None else f"{100 * share:.0f}%"


@dataclass(frozen=True)
class EfficiencyReport:
    """The whole sweep: every cell, each env's zero-shot score, the verdict."""

    cells: tuple[Cell, ...]
    zero_shot: dict[str, float | None] = field(default_factory=dict)
    ks: tuple[int, ...] = ()
    learners: tuple[str, ...] = ()
    verdict: Verdict | None = None

    @classmethod
    def build(
        cls,
        cells: list[Cell],
        zero_shot: dict[str, float | None],
        ks: tuple[int, ...],
        learners: tuple[str, ...],
        bar_k: int,
        threshold: float,
    ) -> EfficiencyReport:
        return cls(tuple(cells), zero_shot, ks, learners, verdict(cells, bar_k, threshold))

    def save(self, path: Path) -> Path:
        write_json_atomic(path, asdict(self), indent=1)
        return path

    @classmethod
    def load(cls, path: Path) -> EfficiencyReport:
        d = json.loads(Path(path).read_text())
        v = d["verdict"]
        return cls(
            tuple(Cell.from_dict(c) for c in d["cells"]),
            d["zero_shot"],
            tuple(d["ks"]),
            tuple(d["learners"]),
            None
            if v is None
            else Verdict(
                **{
                    **v,
                    "envs": tuple(EnvVerdict(**e) for e in v["envs"]),
                    "kinds": tuple(v["kinds"]),
                }
            ),
        )

    def score(self, env_id: str, k: int, learner: str) -> float | None:
        return next(
            (c.score for c in self.cells if (c.env_id, c.k, c.learner) == (env_id, k, learner)),
            None,
        )

    def rows(self) -> list[dict[str, Any]]:
        """One row per env: kind, zero-shot, then each learner's score at each K."""
        rows = []
        for env_id in sorted({c.env_id for c in self.cells}):
            kind = next(c.kind for c in self.cells if c.env_id == env_id)
            row: dict[str, Any] = {
                "env": env_id,
                "kind": kind,
                "zero-shot": self.zero_shot.get(env_id),
            }
            for x in self.learners:
                for k in self.ks:
                    row[f"{x} K={k}"] = self.score(env_id, k, x)
            rows.append(row)
        return rows

    def forgetting(self) -> list[Cell]:
        return [c for c in self.cells if c.forgetting is not None]

    def table(self) -> str:
        """A plain-text table (one line per env), the forgetting lines and the verdict."""
        rows = self.rows()
        if not rows:
            return "no cell measured"
        cols = list(rows[0])
        text = [cols] + [[_cell(r[c]) for c in cols] for r in rows]
        widths = [max(len(line[i]) for line in text) for i in range(len(cols))]
        lines = [
            "  ".join(
                v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths))
            )
            for line in text
        ]
        for c in self.forgetting():
            f = c.forgetting
            assert f is not None
            lines.append(
                f"forgetting after fine-tuning on {c.env_id} (K={c.k}): {f.envs} pretraining "
                f"envs >= 80% {100 * f.before:.0f}% before, {100 * f.after:.0f}% after"
            )
        if self.verdict is not None:
            lines.append(f"bar: {self.verdict.why}")
        return "\n".join(lines)


def _cell(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}" if isinstance(x, float) else str(x)
