"""Checked column reads: every chunk a reader takes from a run is vouched for before use.

Columns written since per-chunk checksums (`CHECKED_CODECS`: zstd with its frame checksum,
32 bits of an XXH64 of the chunk's bytes) are *checked*: libzstd compares each chunk's
checksum as it decompresses it, and every chunk is written even when it equals the fill
value, so a chunk that should exist but does not is damage, never zeros. (zarr's crc32c codec
does the same as a second codec stage in zarr's pipeline, never cheaper in bench/data.py:
docs/benchmarks.md, "Checked reads"; columns with a crc32c codec read as checked too.) Columns written before
(zstd without its checksum; chunks equal to the fill value not written) are *legacy*: they
are vouched for once, when first opened, by the whole-column sha256 the writer recorded (the
check `ldm data verify` makes); `ldm data upgrade` rewrites them as checked columns.

Owns: the chunk encoding of new columns (`CHECKED_CODECS`, `WRITE_CONFIG`), `CheckedColumn`
and the words of a chunk's failure. Imports numpy, zarr and ldm.errors only; never
ldm.data.store (the store passes the arrays in), torch or an environment library.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from zarr.codecs import Crc32cCodec, ZstdCodec

from ldm.errors import DamagedRunError

#: compressors of a checked column: zstd as before, with its frame checksum
CHECKED_CODECS = (ZstdCodec(level=0, checksum=True),)
#: array config of every write: all chunks stored, also those equal to the fill value
WRITE_CONFIG = {"write_empty_chunks": True}


def is_checked(array: Any) -> bool:
    """Whether a zarr array carries a checksum per chunk: zstd's frame checksum (written by
    this ldm or upgraded) or a crc32c codec."""
    return any(
        isinstance(c, Crc32cCodec) or (isinstance(c, ZstdCodec) and c.checksum)
        for c in array.compressors
    )


def for_writing(array: Any) -> Any:
    """The array with the write config (a reopened array forgets it: it is not stored)."""
    return array.with_config(WRITE_CONFIG)


def column_sha256(array: Any, length: int, chunk: int) -> Any:
    """sha256 of the first `length` steps of a column, read `chunk` steps at a time (the
    checksum recorded at commit, recomputed by resume and by `ldm data verify`)."""
    h = hashlib.sha256()
    for a in range(0, length, chunk):
        h.update(np.ascontiguousarray(array[a : min(length, a + chunk)]).tobytes())
    return h


class CheckedColumn:
    """One column of one stream of a run, read only through checks (see module docstring).

    Opening a legacy column hashes it whole and compares with `sha256` (None: no checksum
    recorded, which is damage too); a checked column costs one stat and one checksum per
    chunk read. Every failure is a `DamagedRunError` naming run, stream, column and chunk."""

    def __init__(
        self,
        array: Any,
        run_id: str,
        stream: int,
        column: str,
        length: int,
        sha256: str | None,
        store: str = "",
    ) -> None:
        self.array, self.run_id, self.stream, self.column = array, run_id, stream, column
        self.store = store  # named in the error's advice
        self.length, self.chunk = length, int(array.chunks[0])
        self.checked = is_checked(array)
        self._dir = _local_dir(array)
        if array.shape[0] < length:
            self._damaged(f"{array.shape[0]} steps stored, the metadata says {length}")
        if not self.checked:
            self._vouch(sha256)

    def _damaged(self, what: str) -> None:
        raise DamagedRunError(self.run_id, self.stream, self.column, what, self.store)

    def _vouch(self, sha256: str | None) -> None:
        if sha256 is None:
            self._damaged("no checksum recorded and none per chunk")
        try:
            h = column_sha256(self.array, self.length, self.chunk)
        except Exception as e:
            self._damaged(f"unreadable ({type(e).__name__}: {e})")
        if h.hexdigest() != sha256:
            self._damaged("whole-column sha256 mismatch (data changed or corrupted)")

    def _exists(self, c: int) -> bool:
        key = self.array.metadata.encode_chunk_key((c,) + (0,) * (self.array.ndim - 1))
        if self._dir is not None:  # a stat, not zarr's async round trip (~10x cheaper)
            return os.path.exists(os.path.join(self._dir, key))
        from zarr.core.sync import sync

        path = self.array.store_path
        return bool(sync(path.store.exists(f"{path.path}/{key}")))

    def sha256(self) -> str:
        """sha256 of the whole column (as recorded at commit), read chunk by chunk, checked."""
        h = hashlib.sha256()
        for a in range(0, self.length, self.chunk):
            h.update(np.ascontiguousarray(self.read(a, a + self.chunk)).tobytes())
        return h.hexdigest()

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps [start, stop) of the column (stop defaults to its length), every chunk checked."""
        stop = self.length if stop is None else min(stop, self.length)
        if stop <= start:
            return np.asarray(self.array[start:start])
        if self.checked:
            for c in range(start // self.chunk, (stop - 1) // self.chunk + 1):
                if not self._exists(c):
                    self._damaged(f"chunk {c} is missing")
        try:
            return np.asarray(self.array[start:stop])
        except Exception as e:  # checksum mismatch, zstd error on a cut chunk, ...
            first, error = start // self.chunk, e
            for c in range(first, (stop - 1) // self.chunk + 1):  # name the first bad chunk
                try:
                    self.array[c * self.chunk : min(self.length, (c + 1) * self.chunk)]
                except Exception as inner:
                    first, error = c, inner
                    break
            self._damaged(f"chunk {first} failed its check ({_why(error)})")
            raise  # unreachable: _damaged raises


def _why(e: Exception) -> str:
    """A chunk's decoding error in a few words (zstd's or zarr's crc32c codec's)."""
    if "checksum" in str(e):
        return "checksum mismatch: its bytes were changed"
    if "decompression error" in str(e):
        return f"cannot be decompressed ({e}): its bytes were changed or cut"
    return f"{type(e).__name__}: {e}"


def _local_dir(array: Any) -> str | None:
    """The array's directory when it lives on a local filesystem (else None)."""
    store = array.store_path.store
    root = getattr(store, "root", None)
    return str(Path(root) / array.store_path.path) if root is not None else None
