"""Reference-policy generation (AutoRL): candidates, ranking, recorded training, relabelling,
curation. Imports SB3 only inside jobs."""

from ldm.refgen.config import RefGenConfig
from ldm.refgen.stage import run_refgen

__all__ = ["RefGenConfig", "run_refgen"]
