"""The evaluation's records: what `evaluate()` returns and `results.json` holds.

Owns: `EnvResult` (one env's returns, status and scores, plus what the report adds beside them:
clips, the reference's own protocol score, held-out accuracy), `Summary` (counts at the
paper's thresholds and the threshold curve), `Aggregate` (an IQM with its 95% CI) and
`EvalResult` (one evaluation: its protocol settings, envs, summaries and aggregates). They are frozen: a stage that adds something to a result
makes a new one (`dataclasses.replace`, `EvalResult.with_env_values`), and a misspelt field
fails where it is made. `to_dict` writes the results.json format the report has always
written (optional fields left out when unset); `from_dict` reads it, older files included,
and names any field it does not know.

`Provenance` (date, code commit, the model's steps and parameters) heads the report.

Must not import: torch, ldm.model, ldm.train, ldm.pipeline (results are read without them),
nor the rest of ldm.eval but its config (the protocol, scores and report import this);
ldm.version for the commit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from ldm.atomic import write_json_atomic
from ldm.errors import EvalError, known_keys
from ldm.eval.config import EvalConfig

#: why results.json may hold a field this version does not know
_NEWER = " (written by a newer ldm?)"

Status = Literal["ok", "cut", "failed"]
"""ok: E episodes per rollout; cut: stopped at `max_steps`; failed: the env could not run."""
STATUSES = ("ok", "cut", "failed")


#: Summary fields written only where an env has an expert-normalised score
_EXPERT_COUNTS = ("expert_scorable", "expert_at_50", "expert_mean", "expert_median")


@dataclass(frozen=True)
class ThresholdCurve:
    """The paper's Figure 2: envs whose score is at or above each threshold (percent)."""

    thresholds: tuple[int, ...]
    envs_at_or_above: tuple[int, ...]


@dataclass(frozen=True)
class Summary:
    """Counts over a set of env results (`ldm.eval.scores.summarise`)."""

    envs: int
    scorable: int
    """Envs with a normalised score (a reference that learned, and episodes)."""
    failed: int
    at_80: int
    at_100: int
    share_at_80: float
    """at_80 / scorable (0 when nothing is scorable)."""
    share_at_100: float
    median_score: float | None
    curve: ThresholdCurve
    expert_scorable: int = 0
    """Envs with an expert-normalised score (a published expert, a random score, episodes)."""
    expert_at_50: int = 0
    """Of those, the envs at >= 0.5 expert-normalised."""
    expert_mean: float | None = None
    expert_median: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["curve"] = {k: list(v) for k, v in out["curve"].items()}
        if not self.expert_scorable:  # no expert-normalised score: the file's older form
            for name in _EXPERT_COUNTS:
                out.pop(name)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        known_keys(cls, d, "summary in results.json", EvalError, _NEWER)
        curve = d["curve"]
        return cls(
            **{
                **d,
                "curve": ThresholdCurve(
                    tuple(curve["thresholds"]), tuple(curve["envs_at_or_above"])
                ),
            }
        )


#: EnvResult fields written to results.json only when set (the file's long-standing form)
_OPTIONAL = (
    "error",
    "note",
    "reference_run",
    "reference_stop",
    "first10",
    "last10",
    "clip",
    "clip_note",
    "clip_speed",
    "reference_clip",
    "reference_score",
    "reference_cut_episodes",
    "heldout_accuracy",
    "random_score",
    "expert_score",
    "expert_source",
    "expert_normalised_score",
    "reference_expert_normalised_score",
)


@dataclass(frozen=True)
class EnvResult:
    """One env evaluated by the protocol."""

    env_id: str
    status: Status
    library: str = ""
    """The env id's library (filled from `env_id` when empty)."""
    returns: tuple[tuple[float, ...], ...] = ()
    """Per rollout, the returns of its finished episodes, in order."""
    episodes: int = 0
    seeds: tuple[int, ...] = ()
    """Reset seed of each rollout."""
    mean_return: float | None = None
    step_limit: int | None = None
    """The protocol's per-episode step limit (None: the env's own limits only)."""
    cut_episodes: int = 0
    """Episodes ended at `step_limit`, counted with their return so far."""
    normalised_score: float | None = None
    """100 x (mean_return - first10) / (last10 - first10); None when not scorable."""
    error: str | None = None
    note: str | None = None
    """Why there is no score (no reference, the reference did not learn)."""
    reference_run: str | None = None
    reference_stop: str | None = None
    """Why the reference run stopped (refgen's `StopRecord.reason`; None: not recorded)."""
    first10: float | None = None
    last10: float | None = None
    # added after the protocol, by the report's stages
    clip: str | None = None
    """Path of the recorded first episode (ldm/eval/video.py)."""
    clip_note: str | None = None
    clip_speed: int | None = None
    reference_clip: str | None = None
    reference_score: float | None = None
    """The reference policy's own score by the same protocol (`attach_references`)."""
    reference_cut_episodes: int | None = None
    heldout_accuracy: float | None = None
    """Held-out action accuracy of the training run on this env (0-1)."""
    random_score: float | None = None
    """Mean return of uniform random actions by the protocol (ldm/eval/random_scores.py)."""
    expert_score: float | None = None
    """The env's published expert return (ldm/eval/experts.toml)."""
    expert_source: str | None = None
    """Where `expert_score` comes from (its `ref` in experts.toml)."""
    expert_normalised_score: float | None = None
    """(mean_return - random_score) / (expert_score - random_score), as JAT reports it (a
    fraction: 1 = the expert); None where the env has no published expert or random score."""
    reference_expert_normalised_score: float | None = None
    """The reference policy's expert-normalised score by the same protocol."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise EvalError(f"{self.env_id}: status {self.status!r} is not one of {STATUSES}")
        if not self.library:
            object.__setattr__(self, "library", self.env_id.split("/", 1)[0])

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _OPTIONAL and value is None:
                continue
            out[f.name] = [list(r) for r in value] if f.name == "returns" else value
        out["seeds"] = list(self.seeds)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvResult:
        known_keys(cls, d, f"env {d.get('env_id', '?')!r} in results.json", EvalError, _NEWER)
        return cls(
            **{
                **d,
                "returns": tuple(tuple(r) for r in d.get("returns") or ()),
                "seeds": tuple(d.get("seeds") or ()),
            }
        )


Policy = Literal["ldm", "references", "baseline"]
Normalisation = Literal["reference", "expert"]


@dataclass(frozen=True)
class Aggregate:
    """An aggregate score over envs as rliable reports it: the interquartile mean of per-run
    scores with a 95% stratified-bootstrap confidence interval (ldm/eval/aggregate.py)."""

    policy: Policy
    normalisation: Normalisation
    """reference: the paper's score in percent of the env's reference; expert: the
    expert-normalised score, a fraction (1 = the published expert)."""
    iqm: float
    ci_low: float
    ci_high: float
    envs: int
    """Envs in the aggregate (those with this score and an episode in every rollout)."""
    runs: int
    """Runs per env: the protocol's rollouts, the strata the bootstrap resamples within."""
    reps: int
    """Bootstrap replications."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Aggregate:
        known_keys(cls, d, "aggregate in results.json", EvalError, _NEWER)
        return cls(**d)


@dataclass(frozen=True)
class Provenance:
    """What was evaluated, by which code and when: the report's header."""

    date: str
    """When the evaluation ran, UTC (`2026-12-06 18:02`)."""
    commit: str | None = None
    """The ldm source checkout's git commit (`+dirty` with changes); None when installed."""
    preset: str | None = None
    """The model's preset, by its training facts."""
    steps: int | None = None
    """Optimizer steps the model was trained for, by its training facts."""
    parameters: int | None = None

    @classmethod
    def of(cls, policy: Any) -> Provenance:
        """The provenance of evaluating `policy` now (None: the store's references)."""
        import datetime

        from ldm.version import code_commit

        facts = getattr(policy, "training_facts", None)
        count = getattr(policy, "num_params", None)
        return cls(
            date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            commit=code_commit(),
            preset=facts.preset if facts else None,
            steps=facts.steps if facts else None,
            parameters=int(count()) if callable(count) else None,
        )


@dataclass(frozen=True)
class EvalResult:
    """One evaluation by the protocol (`ldm.eval.evaluate`), as results.json holds it."""

    policy: Policy
    store: str
    config: EvalConfig
    envs: tuple[EnvResult, ...]
    summary: Summary
    seconds: float = 0.0
    model_calls: int = 0
    steps: int = 0
    checkpoint: str | None = None
    """The evaluated checkpoint (set by `ldm run`)."""
    summary_checked: Summary | None = None
    """The summary over the envs whose reference scores >= the floor (`attach_references`)."""
    references_summary: Summary | None = None
    provenance: Provenance | None = None
    """Date, code commit, the model's steps and parameters (the report's header)."""
    aggregates: tuple[Aggregate, ...] = ()
    """IQM and 95% CI of this policy's scores (and the references' beside them, set by
    `attach_references`), per normalisation."""

    def aggregate(self, policy: Policy, normalisation: Normalisation) -> Aggregate | None:
        """The aggregate of one policy and normalisation; None when it was not computed."""
        for a in self.aggregates:
            if a.policy == policy and a.normalisation == normalisation:
                return a
        return None

    def env(self, env_id: str) -> EnvResult:
        """The result of one env (EvalError naming the evaluated ones when it is missing)."""
        for e in self.envs:
            if e.env_id == env_id:
                return e
        raise EvalError(f"{env_id} was not evaluated; evaluated: {[e.env_id for e in self.envs]}")

    def with_env_values(self, name: str, values: dict[str, Any]) -> EvalResult:
        """A copy with EnvResult field `name` set per env id (envs absent from `values` keep
        theirs): how the report's stages put something beside each env's score."""
        if name not in {f.name for f in fields(EnvResult)}:
            raise EvalError(f"EnvResult has no field {name!r}")
        envs = tuple(
            replace(e, **{name: values[e.env_id]}) if e.env_id in values else e for e in self.envs
        )
        return replace(self, envs=envs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "policy": self.policy,
            "store": self.store,
            "config": asdict(self.config),
            "envs": [e.to_dict() for e in self.envs],
            "summary": self.summary.to_dict(),
            "seconds": self.seconds,
            "model_calls": self.model_calls,
            "steps": self.steps,
        }
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        if self.aggregates:
            out["aggregates"] = [asdict(a) for a in self.aggregates]
        for name in ("summary_checked", "references_summary"):
            s = getattr(self, name)
            if s is not None:
                out[name] = s.to_dict()
        if self.provenance is not None:
            out["provenance"] = asdict(self.provenance)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        known_keys(cls, d, "results.json", EvalError, _NEWER)
        config_fields = {f.name for f in fields(EvalConfig)}
        optional = {
            name: Summary.from_dict(d[name])
            for name in ("summary_checked", "references_summary")
            if d.get(name) is not None
        }
        return cls(
            policy=d["policy"],
            store=d["store"],
            # settings an older ldm wrote and this one no longer has are dropped
            config=EvalConfig(**{k: v for k, v in d["config"].items() if k in config_fields}),
            envs=tuple(EnvResult.from_dict(e) for e in d["envs"]),
            summary=Summary.from_dict(d["summary"]),
            seconds=d.get("seconds", 0.0),
            model_calls=d.get("model_calls", 0),
            steps=d.get("steps", 0),
            checkpoint=d.get("checkpoint"),
            aggregates=tuple(Aggregate.from_dict(a) for a in d.get("aggregates") or ()),
            provenance=Provenance(**d["provenance"]) if d.get("provenance") else None,
            **optional,
        )

    def save(self, path: str | Path) -> Path:
        """Write results.json (`path` is the file)."""
        path = Path(path)
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvalResult:
        """Read a results.json file, or the one in a directory."""
        p = Path(path)
        p = p / "results.json" if p.is_dir() else p
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise EvalError(
                f"{p} is not a readable results.json ({type(e).__name__}: {e})"
            ) from None
