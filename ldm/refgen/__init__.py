"""Reference-policy generation (AutoRL): candidates, ranking, recorded training, relabelling,
curation. Imports SB3 only inside jobs."""

from ldm.refgen.stage import RefGenConfig, run_refgen

__all__ = ["RefGenConfig", "run_refgen"]
