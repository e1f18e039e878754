"""The reference stage's records: the ranking table of a library and the stage's summary.

Owns the schema of `<store>/refgen/ranking-<library>.json` (`RankingTable`) and of
`<store>/refgen/summary.json` (`RefGenSummary`, with a `LibraryOutcome` per library and a
`RunOutcome` per curated run). They are frozen: a misspelt field fails where it is made, and
`to_dict` writes the files' long-standing form. `from_dict` reads them, files written by
earlier versions included (tables without per-kind rankings, summaries without fallbacks),
and names any key it does not know.

Imports the standard library and ldm.data's `Curation`; must not import ldm.envs, the SB3
classes, ldm.model or later parts (the records are read without them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldm.atomic import write_json_atomic
from ldm.data import Curation
from ldm.errors import RefGenError, known_keys


def ranking_path(store: str | Path, library: str) -> Path:
    """Where a library's ranking table lies in a store."""
    return Path(store) / "refgen" / f"ranking-{library}.json"


def summary_path(store: str | Path) -> Path:
    """Where the stage's summary lies in a store."""
    return Path(store) / "refgen" / "summary.json"


@dataclass(frozen=True)
class RankedCandidate:
    """One candidate's place in a ranking."""

    candidate: str
    points: int | None
    """Pairwise Welch wins on the ranking envs; None when the library was not ranked."""


@dataclass(frozen=True)
class RankingTable:
    """The ranking of a library's candidates (pairwise one-tailed Welch tests).

    Two forms: ranked (`envs` set, `note` None) and unranked (too few compatible candidates:
    every candidate with `points` None and the `note` saying why)."""

    library: str
    ranking: tuple[RankedCandidate, ...]
    envs: tuple[str, ...] = ()
    """The K envs the candidates were ranked on."""
    ranking_by_action_kind: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Candidate names best first among the ranking envs of each action kind."""
    final_returns: dict[str, dict[str, float]] = field(default_factory=dict)
    """env -> candidate -> mean final return of its ranking run."""
    check_returns: dict[str, dict[str, float]] = field(default_factory=dict)
    """env -> candidate -> mean return of its ranking run's deterministic check, where the
    run played one: what the points are computed on then (ldm/refgen/ranking.py)."""
    by_env: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """env -> candidate names best first by the Welch points of that env's own ranking runs
    (ties in the library's order): what an env ranked on takes with rank_env_order = "env"."""
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    """env -> candidate -> why it cannot run there."""
    failed: dict[str, str | None] = field(default_factory=dict)
    """job key -> error of the ranking jobs that failed."""
    note: str | None = None
    """Why the library was not ranked (the unranked form only)."""

    @property
    def candidates(self) -> list[str]:
        """Candidate names, best first."""
        return [r.candidate for r in self.ranking]

    def order(self, per_env: bool = False) -> dict[str, list[str]]:
        """The planner's ranking argument: `"*"` -> every candidate, action kind -> its own,
        and with `per_env` each ranking env's id -> its own order (`by_env`)."""
        by_kind = {k: list(v) for k, v in self.ranking_by_action_kind.items()}
        by_env = {e: list(v) for e, v in self.by_env.items()} if per_env else {}
        return {"*": self.candidates, **by_kind, **by_env}

    def to_dict(self) -> dict[str, Any]:
        ranking = [{"candidate": r.candidate, "points": r.points} for r in self.ranking]
        if self.note is not None:
            return {"library": self.library, "ranking": ranking, "note": self.note}
        return {
            "library": self.library,
            "envs": list(self.envs),
            "ranking": ranking,
            "ranking_by_action_kind": {k: list(v) for k, v in self.ranking_by_action_kind.items()},
            "final_returns": self.final_returns,
            **({"check_returns": self.check_returns} if self.check_returns else {}),
            # written where measured: older tables, without it, read back unchanged
            **({"by_env": {e: list(v) for e, v in self.by_env.items()}} if self.by_env else {}),
            "skipped": self.skipped,
            "failed": self.failed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RankingTable:
        known_keys(cls, d, f"ranking table of {d.get('library', '?')!r}", RefGenError)
        return cls(
            **{
                **d,
                "ranking": tuple(RankedCandidate(**r) for r in d["ranking"]),
                "envs": tuple(d.get("envs", ())),
                "ranking_by_action_kind": {
                    k: tuple(v) for k, v in d.get("ranking_by_action_kind", {}).items()
                },
                "by_env": {e: tuple(v) for e, v in d.get("by_env", {}).items()},
            }
        )

    def write(self, store: str | Path) -> Path:
        path = ranking_path(store, self.library)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, store: str | Path, library: str) -> RankingTable:
        return cls.from_dict(_read(ranking_path(store, library)))


@dataclass(frozen=True)
class LibraryOutcome:
    """What the stage did for one library."""

    ranking: tuple[str, ...]
    ranking_by_action_kind: dict[str, tuple[str, ...]] = field(default_factory=dict)
    references: int = 0
    """Reference jobs that finished."""
    failed: tuple[str, ...] = ()
    """Keys of the reference jobs that failed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranking": list(self.ranking),
            "ranking_by_action_kind": {k: list(v) for k, v in self.ranking_by_action_kind.items()},
            "references": self.references,
            "failed": list(self.failed),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LibraryOutcome:
        known_keys(cls, d, "library summary", RefGenError)
        kinds = {k: tuple(v) for k, v in d.get("ranking_by_action_kind", {}).items()}
        return cls(
            tuple(d["ranking"]), kinds, int(d.get("references", 0)), tuple(d.get("failed", ()))
        )


@dataclass(frozen=True)
class RunOutcome:
    """A curated run: its env, curation's verdict and why the run stopped."""

    env_id: str
    curation: Curation
    stop: str | None = None
    """The run's `StopRecord.reason` (None: recorded before runs said why they stopped)."""

    def to_dict(self) -> dict[str, Any]:
        verdict = self.curation.to_dict()
        verdict.pop("best_on_env", None)  # the env's figure, not the run's
        return {"env_id": self.env_id, **verdict, **({"stop": self.stop} if self.stop else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunOutcome:
        d = dict(d)
        env_id, stop = d.pop("env_id"), d.pop("stop", None)
        try:
            return cls(env_id, Curation.from_dict(d), stop)
        except Exception as e:
            raise RefGenError(f"summary entry of {env_id!r}: {e}") from None


@dataclass(frozen=True)
class RefGenSummary:
    """The stage's outcome (`run_refgen`), written to `<store>/refgen/summary.json`."""

    libraries: dict[str, LibraryOutcome] = field(default_factory=dict)
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """env -> its ranking runs that became references when its references all failed."""
    runs: dict[str, RunOutcome] = field(default_factory=dict)
    """run id -> verdict, for every curated run."""

    def stop_counts(self) -> dict[str, int]:
        """Why the curated runs stopped: reason -> runs, most first (runs that did not say
        are left out)."""
        from collections import Counter

        return dict(Counter(r.stop for r in self.runs.values() if r.stop).most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "libraries": {k: v.to_dict() for k, v in self.libraries.items()},
            "fallbacks": {k: list(v) for k, v in self.fallbacks.items()},
            "runs": {k: v.to_dict() for k, v in self.runs.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RefGenSummary:
        known_keys(cls, d, "refgen summary", RefGenError)
        return cls(
            {k: LibraryOutcome.from_dict(v) for k, v in d.get("libraries", {}).items()},
            {k: tuple(v) for k, v in d.get("fallbacks", {}).items()},
            {k: RunOutcome.from_dict(v) for k, v in d.get("runs", {}).items()},
        )

    def write(self, store: str | Path) -> Path:
        path = summary_path(store)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, store: str | Path) -> RefGenSummary:
        return cls.from_dict(_read(summary_path(store)))


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RefGenError(f"{path} does not exist; run `ldm refgen all` first") from None
