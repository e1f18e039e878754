"""Exception types, one per part of the pipeline.

Every message names the thing at fault, the limit or rule it broke, and the fix.
This module imports nothing: every part (and the isolated env worker's client) uses it.
"""


class LDMError(Exception):
    """Base class of every error ldm raises on purpose."""


class SpaceError(LDMError):
    """A space is unsupported or outside the paper's limits."""


class EnvError(LDMError):
    """An environment, its library spec or its worker failed."""


class StoreError(LDMError):
    """The trajectory store is missing, corrupted or was given bad data."""


class ModelError(LDMError):
    """A model config, checkpoint or input is invalid."""


class RefGenError(LDMError):
    """Reference-policy generation failed or was misconfigured."""


class TrainError(LDMError):
    """Training is misconfigured or diverged."""


class EvalError(LDMError):
    """Evaluation is misconfigured or an env could not be evaluated."""


class ConfigError(LDMError):
    """A configuration file or dataclass holds an invalid value."""
