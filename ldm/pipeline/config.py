"""`PipelineConfig`: a whole pipeline as read from its TOML file (`ldm run CONFIG`), and
`StageConfigs`, its stage tables as each stage's typed config, built once.

    name = "quickstart"
    out = "runs/quickstart"          # store/, train/, eval/ and pipeline.json go here
    [refgen]  ...                    # RefGenConfig fields
    [train]   ...                    # TrainConfig fields (store and out are filled in)
    [eval]    ...                    # EvalConfig fields
    [heldout] envs, libraries        # kept out of training, scored zero-shot (heldout.py)
    [heldout.adapt] ks, learners     # the data-efficiency sweep over them (adapt_config.py)
    [profiles.NAME.train] ...        # named overrides, `ldm run CONFIG --profile NAME`

Imports ldm.errors and the held-out config; the stages' config modules (refgen, train, eval,
model presets) lazily, when the stage configs are built; no stage itself (`--dry-run` and
`ldm run` read it before any stage runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import tomllib

from ldm.errors import ConfigError
from ldm.pipeline.heldout import HeldoutConfig

if TYPE_CHECKING:
    from ldm.eval import EvalConfig
    from ldm.refgen import RefGenConfig
    from ldm.train import TrainConfig


class StageConfigs(NamedTuple):
    """A pipeline's stage configs: the held-out envs applied, store and out filled in."""

    refgen: RefGenConfig
    train: TrainConfig
    eval: EvalConfig


@dataclass
class PipelineConfig:
    """A whole pipeline, as read from its TOML file."""

    name: str
    """Name shown in reports."""
    out: str
    """Output directory of the whole pipeline."""
    refgen: dict[str, Any] = field(default_factory=dict)
    """The [refgen] table (RefGenConfig fields)."""
    train: dict[str, Any] = field(default_factory=dict)
    """The [train] table (TrainConfig fields but store/out)."""
    eval: dict[str, Any] = field(default_factory=dict)
    """The [eval] table (EvalConfig fields)."""
    cluster: dict[str, Any] = field(default_factory=dict)
    """Notes for cluster launches (torchrun processes, Ray address); read by --dry-run."""
    heldout: dict[str, Any] = field(default_factory=dict)
    """The [heldout] table (ldm/pipeline/heldout.py): envs and libraries whose references are
    generated but whose runs never reach training; scored zero-shot by the held-out stage."""
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named overrides of the stage tables (`[profiles.gpu.train]` ...), chosen with
    `ldm run CONFIG --profile NAME`: one file holds e.g. a CPU-sized and a GPU-sized model."""

    @classmethod
    def load(
        cls, path: str | Path, profile: str | None = None, out: str | None = None
    ) -> PipelineConfig:
        path = Path(path)
        data = _read_toml(path)
        allowed = {"name", "out", "refgen", "train", "eval", "heldout", "cluster", "profiles"}
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(
                f"{path}: unknown top-level keys {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        for key in ("name", "out"):
            if key not in data:
                raise ConfigError(f"{path}: missing required key {key!r}")
        if profile is not None:
            data = _with_profile(data, profile, path)
        if out is not None:
            data = {**data, "out": out}
        cfg = cls(**data)
        cfg.validate(path)
        return cfg

    @property
    def store(self) -> str:
        return str(Path(self.out) / "store")

    @property
    def held_out(self) -> HeldoutConfig:
        return HeldoutConfig.from_table(self.heldout)

    @cached_property
    def stages(self) -> StageConfigs:
        """The stage tables as each stage's typed config, built once (at `load`, which
        validates them); `refgen, train, evaluation = cfg.stages` unpacks them."""
        from ldm.eval import EvalConfig
        from ldm.refgen import RefGenConfig
        from ldm.train import TrainConfig

        for key in ("store", "out"):
            if key in self.train:
                raise ConfigError(
                    f"[train] must not set {key!r}: the pipeline sets it (under `out`)"
                )
        held_out = self.held_out
        refgen = held_out.with_references(RefGenConfig.from_dict(self.refgen))
        train = held_out.with_exclusions(
            TrainConfig.from_dict(
                {**self.train, "store": self.store, "out": str(Path(self.out) / "train")}
            )
        )
        try:
            evaluation = EvalConfig(**{"video": True, **self.eval})  # clips on in `ldm run`
        except TypeError as e:
            raise ConfigError(f"[eval]: {e}") from None
        return StageConfigs(refgen, train, evaluation)

    def validate(self, path: Path) -> None:
        try:
            train, evaluation = self.stages.train, self.stages.eval
            if self.held_out.adapt is not None:
                self.held_out.adapt.check_seed(evaluation.seed, evaluation.unseen_seed)
            from ldm.model import preset

            preset(train.preset, **train.model)
        except ConfigError:
            raise
        except Exception as e:  # each part's own config error, with the file named
            raise ConfigError(f"{path}: {e}") from None


def out_dir(path: str | Path, profile: str | None = None) -> Path:
    """The `out` directory a pipeline config names (with `profile`'s override, if it has one),
    read without building or checking its stages (`ldm status CONFIG` imports no stage)."""
    path = Path(path)
    data = _read_toml(path)
    if profile is not None:
        data = _with_profile(data, profile, path)
    if "out" not in data:
        raise ConfigError(f"{path}: missing required key 'out'")
    return Path(data["out"])


def _read_toml(path: Path) -> dict[str, Any]:
    """A pipeline config's tables; a missing file or bad TOML is a ConfigError naming it."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"pipeline config {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def _with_profile(data: dict[str, Any], profile: str, path: Path) -> dict[str, Any]:
    """The config with a profile's tables merged over the stage tables (key by key)."""
    profiles = data.get("profiles", {})
    if profile not in profiles:
        raise ConfigError(
            f"{path}: no profile {profile!r}; the file has {sorted(profiles) or 'none'}"
        )
    over = profiles[profile]
    bad = set(over) - {"out", "refgen", "train", "eval"}
    if bad:
        raise ConfigError(
            f"{path}: profile {profile!r} sets {sorted(bad)}; allowed: out, refgen, train, eval"
        )
    merged = dict(data)
    for key, value in over.items():
        merged[key] = value if key == "out" else {**data.get(key, {}), **value}
    return merged
