"""RunReader: lazy, checked access to one committed run of the store (its meta.json and its
per-stream zarr columns, every chunk read through `ldm.data.chunks`' checks).

Imports numpy, zarr, `ldm.data.chunks`, `ldm.data.meta`, `ldm.spaces` and `ldm.errors`; not
the store (which opens readers) nor the writer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ldm.data.chunks import CheckedColumn, is_checked
from ldm.data.meta import FORMAT_VERSION, RunMeta
from ldm.errors import DamagedRunError, StoreError
from ldm.spaces import SpaceSpec

#: meta.json keys whose size grows with a run's episodes (thousands per run at the paper's
#: budgets: the sampler's readers of 10,000 such runs held 6 GB of them)
EPISODE_KEYS = ("episodes", "episode_returns", "check_returns")


class RunReader:
    """Lazy access to a committed run: its metadata `meta` (a `RunMeta`), per-stream zarr
    arrays. Opened with `episodes=False`, its `meta` lacks `EPISODE_KEYS` (no episodes, no
    returns)."""

    def __init__(self, path: Path, episodes: bool = True) -> None:
        self.path = Path(path)
        self.run_id = self.path.name
        raw = json.loads((self.path / "meta.json").read_text())
        if not episodes:
            for key in EPISODE_KEYS:
                raw.pop(key, None)
        if raw.get("format") != FORMAT_VERSION:
            raise StoreError(
                f"run {self.run_id} has format {raw.get('format')}, expected {FORMAT_VERSION}"
            )
        self.meta = RunMeta.from_dict(raw)
        self.obs_spec: SpaceSpec = self.meta.observation_space
        self.act_spec: SpaceSpec = self.meta.action_space
        self._group: Any = None
        self._columns: dict[tuple[int, str], CheckedColumn] = {}

    @property
    def group(self) -> Any:
        if self._group is None:
            self._group = zarr.open_group(str(self.path / "data.zarr"), mode="r")
        return self._group

    @property
    def num_streams(self) -> int:
        return self.meta.num_streams

    def length(self, stream: int) -> int:
        return self.meta.stream_lengths[stream]

    def has_reference_actions(self) -> bool:
        return all(f"s{k}/ref_actions" in self.meta.checksums for k in range(self.num_streams))

    def array(self, stream: int, column: str) -> Any:
        """The raw zarr array (unchecked: read data through `column` or `read`)."""
        try:
            return self.group[f"s{stream}/{column}"]
        except KeyError:
            raise StoreError(
                f"run {self.run_id} has no column {column!r} in stream {stream}"
            ) from None

    def legacy_columns(self) -> list[str]:
        """Columns (`s<k>/<name>`) without a checksum per chunk: `ldm data upgrade` adds one."""
        sums = self.meta.checksums
        return [k for k in sorted(sums) if not is_checked(self.group[k])]

    def column(self, stream: int, column: str) -> CheckedColumn:
        """A column read through checks (`ldm.data.chunks`); opened once per reader. A column
        the metadata vouches for (it has a checksum) that zarr cannot open is damage."""
        key = (stream, column)
        if key not in self._columns:
            sha = self.meta.checksums.get(f"s{stream}/{column}")
            store = str(self.path.parent.parent)
            try:
                arr = self.array(stream, column)
            except Exception as e:
                if sha is None:
                    raise
                raise DamagedRunError(
                    self.run_id, stream, column, f"cannot be opened ({type(e).__name__})", store
                ) from None
            self._columns[key] = CheckedColumn(
                arr, self.run_id, stream, column, self.length(stream), sha, store
            )
        return self._columns[key]

    def read(self, stream: int, column: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps [start, stop) of a column, every chunk checked (`DamagedRunError` if not)."""
        return self.column(stream, column).read(start, stop)
