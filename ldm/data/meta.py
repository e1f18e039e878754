"""RunMeta, Curation, Episode: the schema of a run's `meta.json`, owned by one record each;
ManifestEntry: a run's line in the store's `manifest.json`.

A run's metadata is written by the recorder (refgen's jobs, Minari import), the writer
(lengths, episodes, checksums, anchors), relabelling and curation, and read by everyone after
them, always as a `RunMeta`: the writer builds one (`new_meta`) and keeps it up to date,
`Store.update_meta` merges updates into one, `RunReader.meta` is one. The file is read by
`RunMeta.from_dict` (which rejects a missing field, a bad verdict or a malformed episode with a
StoreError naming it) and written by `RunMeta.to_dict` (the on-disk form, unchanged: format 1).
Keys the schema does not name (the recorder's own: candidate, config, seed, policy_file, stop,
check_returns, ...) are kept in `extra` and written back at the top level, as before.

Imports the standard library, `ldm.spaces` and `ldm.errors` only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from ldm.errors import StoreError, known_keys
from ldm.spaces import SpaceSpec

#: The meta.json / manifest format this ldm reads and writes.
FORMAT_VERSION = 1

Verdict = Literal["pass", "fail", "excluded"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


@dataclass(frozen=True)
class Curation:
    """Curation's verdict on a run: only `pass` runs are trained on."""

    verdict: Verdict
    reasons: tuple[str, ...] = ()
    """Why a run failed or was excluded (empty for a pass)."""
    final_return: float | None = None
    """Mean return of the run's last 10% of episodes."""
    best_on_env: float | None = None
    """The best final return among the env's runs (the 95% rule compares with it)."""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise StoreError(f"curation verdict {self.verdict!r} is not one of {VERDICTS}")
        object.__setattr__(self, "reasons", tuple(self.reasons))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"verdict": self.verdict, "reasons": list(self.reasons)}
        for key in ("final_return", "best_on_env"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Curation:
        return cls(**known_keys(cls, d, "curation", StoreError))


@dataclass(frozen=True)
class Episode:
    """One finished episode of a stream."""

    stream: int
    return_: float
    """Undiscounted return (`return` in meta.json)."""
    length: int
    end: int
    """Index of its last transition in the stream."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "return": self.return_,
            "length": self.length,
            "end": self.end,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        if d.keys() == _EPISODE_KEYS:  # the writer's form: a run holds thousands of them
            return cls(d["stream"], d["return"], d["length"], d["end"])
        d = dict(d)
        if "return" in d:
            d["return_"] = d.pop("return")
        return cls(**known_keys(cls, d, "episode", StoreError))


_EPISODE_KEYS = {"stream", "return", "length", "end"}


@dataclass(frozen=True)
class RunMeta:
    """A committed run's metadata (see docs/data-format.md)."""

    env_id: str
    library: str
    observation_space: SpaceSpec
    action_space: SpaceSpec
    num_streams: int
    stream_lengths: tuple[int, ...]
    """Transitions per stream."""
    episodes: tuple[Episode, ...] = ()
    checksums: dict[str, str] = field(default_factory=dict)
    """sha256 per column, `s<k>/<column>`."""
    transitions: int = 0
    episode_returns: tuple[float, ...] = ()
    first10: float | None = None
    """Mean return of the first 10% of episodes (the normalisation's lower anchor)."""
    last10: float | None = None
    """Mean return of the last 10% of episodes (the upper anchor)."""
    algorithm: str | None = None
    relabelled: bool = False
    """The reference-action columns hold the final policy's actions."""
    curation: Curation | None = None
    created: float | None = None
    committed: float | None = None
    format: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    """The recorder's own keys, kept as they are."""

    def __post_init__(self) -> None:
        if self.format != FORMAT_VERSION:
            raise StoreError(
                f"run metadata has format {self.format}, this ldm reads {FORMAT_VERSION}"
            )
        if len(self.stream_lengths) != self.num_streams:
            raise StoreError(
                f"run of {self.env_id}: {len(self.stream_lengths)} stream lengths for "
                f"{self.num_streams} streams"
            )

    def to_dict(self) -> dict[str, Any]:
        """The meta.json form (JSON-ready)."""
        d: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if v is None and f.name in _OMITTED_WHEN_NONE:
                continue
            d[f.name] = _jsonable(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunMeta:
        """Parse a meta.json dict; unknown keys go to `extra`."""
        names = {f.name for f in fields(cls)} - {"extra"}
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise StoreError(f"run metadata lacks {missing}; the run was not written by ldm")
        known = {k: v for k, v in d.items() if k in names}
        try:
            known["observation_space"] = _spec(known["observation_space"])
            known["action_space"] = _spec(known["action_space"])
            known["stream_lengths"] = tuple(int(n) for n in known["stream_lengths"])
            known["episodes"] = tuple(
                e if isinstance(e, Episode) else Episode.from_dict(e)
                for e in known.get("episodes", ())
            )
            known["episode_returns"] = tuple(known.get("episode_returns", ()))
            if isinstance(known.get("curation"), dict):
                known["curation"] = Curation.from_dict(known["curation"])
        except (TypeError, ValueError, KeyError) as e:
            raise StoreError(f"run metadata of {d.get('env_id')} is malformed: {e}") from None
        return cls(**known, extra={k: v for k, v in d.items() if k not in names})

    def updated(self, updates: dict[str, Any]) -> RunMeta:
        """This metadata with `updates` (meta.json keys) merged in, validated."""
        return RunMeta.from_dict({**self.to_dict(), **updates})

    def manifest_entry(self) -> ManifestEntry:
        """The run's line in the store's manifest."""
        return ManifestEntry(
            env_id=self.env_id,
            library=self.library,
            transitions=int(self.transitions),
            streams=int(self.num_streams),
            verdict=self.curation.verdict if self.curation else None,
            relabelled=bool(self.relabelled),
            algorithm=self.algorithm,
            committed=self.committed,
            stream_lengths=tuple(self.stream_lengths),
            reference_actions=all(
                f"s{k}/ref_actions" in self.checksums for k in range(self.num_streams)
            ),
        )


@dataclass(frozen=True)
class ManifestEntry:
    """A committed run's line in the store's manifest.json: what `Store.runs()` answers
    without opening the run (its schema; the run's own metadata is `RunMeta`)."""

    env_id: str
    library: str
    transitions: int
    streams: int
    verdict: Verdict | None = None
    """Curation's verdict (None: not curated yet)."""
    relabelled: bool = False
    algorithm: str | None = None
    committed: float | None = None
    stream_lengths: tuple[int, ...] | None = None
    """Transitions per stream, so that the sampler starts without opening a run (None: the
    entry was written before manifests held them; `ldm data upgrade` adds them)."""
    reference_actions: bool | None = None
    """Every stream has a reference-action column (None: as `stream_lengths`)."""

    def __post_init__(self) -> None:
        if self.stream_lengths is not None:
            object.__setattr__(self, "stream_lengths", tuple(int(n) for n in self.stream_lengths))
            if len(self.stream_lengths) != self.streams:
                raise StoreError(
                    f"manifest entry of {self.env_id}: {len(self.stream_lengths)} stream lengths "
                    f"for {self.streams} streams; rebuild it with `ldm data upgrade STORE`"
                )

    def to_dict(self) -> dict[str, Any]:
        """The manifest.json form (every key written, null included, as always)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ManifestEntry:
        try:
            return cls(**known_keys(cls, d, "manifest entry", StoreError))
        except (TypeError, ValueError) as e:
            raise StoreError(f"manifest entry of {d.get('env_id')} is malformed: {e}") from None


_REQUIRED = (
    "env_id",
    "library",
    "observation_space",
    "action_space",
    "num_streams",
    "stream_lengths",
)
#: optional fields a run may not have yet: left out of meta.json rather than written as null
_OMITTED_WHEN_NONE = {"first10", "last10", "curation", "committed", "created", "algorithm"}


def _spec(v: Any) -> SpaceSpec:
    return v if isinstance(v, SpaceSpec) else SpaceSpec.from_dict(v)


def _jsonable(v: Any) -> Any:
    if hasattr(v, "to_dict"):
        return v.to_dict()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return dict(v)
    return v


__all__ = [
    "FORMAT_VERSION",
    "Curation",
    "Episode",
    "ManifestEntry",
    "RunMeta",
    "VERDICTS",
    "Verdict",
    "new_meta",
]


def new_meta(
    env_id: str,
    library: str,
    obs_spec: SpaceSpec,
    act_spec: SpaceSpec,
    num_streams: int,
    recorder: dict[str, Any],
) -> RunMeta:
    """The metadata a new run starts with, nothing recorded yet (the writer's). `recorder`
    holds the recorder's keys: those `RunMeta` names (`algorithm`) become its fields, the
    rest its `extra`."""
    return RunMeta.from_dict(
        {
            "format": FORMAT_VERSION,
            "env_id": env_id,
            "library": library,
            "observation_space": obs_spec,
            "action_space": act_spec,
            "num_streams": num_streams,
            "created": time.time(),
            **recorder,
            "stream_lengths": [0] * num_streams,
        }
    )
