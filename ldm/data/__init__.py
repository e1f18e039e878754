"""Trajectory store (`Store`, `RunWriter`, `RunReader`) and the window sampler/loader.

Imports neither torch (only `WindowLoader` iteration does) nor any environment library.
"""

from ldm.data.anchors import anchors, normalised_score
from ldm.data.loader import WindowLoader
from ldm.data.meta import Curation, Episode, ManifestEntry, RunMeta
from ldm.data.reader import RunReader
from ldm.data.sampler import WindowSampler
from ldm.data.store import Store
from ldm.data.writer import RunWriter, resume_run

__all__ = [
    "Store",
    "RunReader",
    "RunWriter",
    "resume_run",
    "WindowLoader",
    "WindowSampler",
    "anchors",
    "normalised_score",
    "RunMeta",
    "Curation",
    "Episode",
    "ManifestEntry",
]
