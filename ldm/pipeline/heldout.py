"""A pipeline's `[heldout]` table: envs and whole libraries kept out of pretraining.

    [heldout]
    envs = ["classic-control/Acrobot-v1"]   # unseen envs of libraries the LDM trains on
    libraries = ["toy-text"]                # unseen libraries: none of their envs trains
                                            # (every env of it, or those in [refgen] envs)
    [heldout.adapt]                         # optional: the data-efficiency sweep (adapt_config.py)

Their references are generated like every other env's (they give the anchors of the scores
and the data of fine-tuning), but the training sampler never reads their runs (`TrainConfig.
exclude`), the evaluation stage leaves them out, and the held-out stage scores them zero-shot
by the protocol, the two kinds apart (`kind`).

Owns: `HeldoutConfig` (the table, validated) and how it changes the stage configs. Imports
only the standard library, ldm.errors and its `adapt` table's config (read by `--dry-run`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from ldm.errors import ConfigError
from ldm.pipeline.adapt_config import AdaptConfig

Kind = Literal["unseen env", "unseen library"]


@dataclass(frozen=True)
class HeldoutConfig:
    """Env ids and library names kept out of pretraining."""

    envs: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    adapt: AdaptConfig | None = None
    """The data-efficiency sweep after the zero-shot stage (None: no sweep)."""

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> HeldoutConfig:
        unknown = set(table) - {"envs", "libraries", "adapt"}
        if unknown:
            raise ConfigError(
                f"[heldout] has unknown keys {sorted(unknown)}; allowed: envs, libraries, adapt"
            )
        envs = tuple(table.get("envs", ()))
        libraries = tuple(table.get("libraries", ()))
        bad = [e for e in envs if "/" not in e]
        if bad:
            raise ConfigError(f"[heldout] envs {bad} are not env ids (LIBRARY/NAME)")
        inside = [e for e in envs if e.split("/", 1)[0] in libraries]
        if inside:
            raise ConfigError(
                f"[heldout] envs {inside} are in a held-out library already; list them once"
            )
        adapt = AdaptConfig.from_table(table["adapt"]) if "adapt" in table else None
        if adapt is not None and not (envs or libraries):
            raise ConfigError(
                "[heldout.adapt] needs held-out envs: set [heldout] envs or libraries"
            )
        return cls(envs, libraries, adapt)

    @property
    def active(self) -> bool:
        return bool(self.envs or self.libraries)

    @property
    def exclude(self) -> list[str]:
        """What the training sampler must never read: `TrainConfig.exclude`."""
        return [*self.envs, *self.libraries]

    def covers(self, env_id: str) -> bool:
        return env_id in self.envs or env_id.split("/", 1)[0] in self.libraries

    def kind(self, env_id: str) -> Kind:
        """An unseen env of a library the LDM trains on, or one of an unseen library."""
        return "unseen library" if env_id.split("/", 1)[0] in self.libraries else "unseen env"

    def with_references(self, refgen: Any) -> Any:
        """The RefGenConfig with the held-out envs and libraries added (their references are
        generated: they give the anchors and the data of fine-tuning). A held-out library
        with envs listed in [refgen] envs is held out with those envs only (not every env of
        it is generated)."""
        envs = [*refgen.envs, *(e for e in self.envs if e not in refgen.envs)]
        listed = {e.split("/", 1)[0] for e in refgen.envs}
        whole = (x for x in self.libraries if x not in refgen.libraries and x not in listed)
        return replace(refgen, envs=envs, libraries=[*refgen.libraries, *whole])

    def with_exclusions(self, train: Any) -> Any:
        """The TrainConfig whose sampler never reads the held-out envs' runs."""
        return replace(train, exclude=[*train.exclude, *self.exclude])
