"""Wire protocol between an ldm client and an environment worker: framed JSON + raw arrays.

Version-neutral on purpose (no pickle): a worker on Python 3.8 with numpy 1.x talks to a
client on Python 3.11 with numpy 2.x. A frame is

    8-byte big-endian length of the JSON header | header (UTF-8 JSON) | array buffers

Inside the header, every numpy array is replaced by {"__nd__": i, "dtype": str, "shape": [...]}
and its C-contiguous bytes follow in order i. Tuples travel as lists; numpy scalars as
Python scalars; anything else JSON cannot hold is sent as its repr (infos may carry objects).

Imports: standard library and numpy only. This file is copied into nothing and imported by
the worker script from its own directory, inside each library's virtual environment.
"""

import json
import struct

import numpy as np

_LEN = struct.Struct(">Q")
MAX_HEADER = 1 << 30


def _encode(value, arrays):
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [_encode(v, arrays) for v in value.tolist()]
        arr = np.ascontiguousarray(value)
        arrays.append(arr)
        return {"__nd__": len(arrays) - 1, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(value, np.generic):
        item = value.item()
        return item if isinstance(item, (bool, int, float, str)) else {"__repr__": repr(item)}
    if isinstance(value, dict):
        return {str(k): _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, arrays) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:  # NaN is not JSON
            return {"__float__": "nan"}
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return {"__float__": "inf" if value > 0 else "-inf"}
        return value
    return {"__repr__": repr(value)}


def _decode(value, arrays):
    if isinstance(value, dict):
        if "__nd__" in value:
            return arrays[value["__nd__"]]
        if "__float__" in value:
            return float(value["__float__"])
        if "__repr__" in value:
            return value["__repr__"]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def dumps(message):
    """Encode a message (dict) into the bytes of one frame."""
    arrays = []
    header = json.dumps(_encode(message, arrays), separators=(",", ":")).encode("utf-8")
    parts = [_LEN.pack(len(header)), header]
    parts.extend(a.tobytes() for a in arrays)
    return b"".join(parts)


def write_message(stream, message):
    """Write one frame to a binary stream and flush it."""
    stream.write(dumps(message))
    stream.flush()


def _read_exact(stream, n):
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(stream):
    """Read one frame from a binary stream; raises EOFError when the stream is closed."""
    (n,) = _LEN.unpack(_read_exact(stream, _LEN.size))
    if n > MAX_HEADER:
        raise ValueError("frame header of %d bytes is over the limit: corrupted stream" % n)
    header = json.loads(_read_exact(stream, n).decode("utf-8"))
    specs = []
    _collect(header, specs)
    arrays = [None] * len(specs)
    for spec in sorted(specs, key=lambda s: s["__nd__"]):
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"])) if spec["shape"] else 1
        buf = _read_exact(stream, count * dtype.itemsize)
        arrays[spec["__nd__"]] = np.frombuffer(buf, dtype=dtype).reshape(spec["shape"]).copy()
    return _decode(header, arrays)


def _collect(value, out):
    if isinstance(value, dict):
        if "__nd__" in value:
            out.append(value)
            return
        for v in value.values():
            _collect(v, out)
    elif isinstance(value, list):
        for v in value:
            _collect(v, out)


class FrameReader:
    """Reads frames from a raw file descriptor with a timeout, without a helper thread.

    `read_message(timeout)` returns the next message, None on timeout, or raises EOFError.
    """

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, n, deadline):
        import os
        import select
        import time

        while len(self.buf) < n:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                ready, _, _ = select.select([self.fd], [], [], remaining)
                if not ready:
                    return False
            chunk = os.read(self.fd, max(1 << 16, n - len(self.buf)))
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        return True

    def read_message(self, timeout=None):
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._fill(_LEN.size, deadline):
            return None
        (n,) = _LEN.unpack(bytes(self.buf[: _LEN.size]))
        if n > MAX_HEADER:
            raise ValueError("frame header of %d bytes is over the limit: corrupted stream" % n)
        if not self._fill(_LEN.size + n, deadline):
            return None
        header = json.loads(bytes(self.buf[_LEN.size : _LEN.size + n]).decode("utf-8"))
        specs = []
        _collect(header, specs)
        total = _LEN.size + n
        sizes = []
        for spec in sorted(specs, key=lambda s: s["__nd__"]):
            dtype = np.dtype(spec["dtype"])
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            sizes.append((spec, dtype, count * dtype.itemsize))
        if not self._fill(total + sum(z for _, _, z in sizes), deadline):
            return None
        arrays = [None] * len(specs)
        pos = total
        for spec, dtype, size in sizes:
            raw = bytes(self.buf[pos : pos + size])
            arrays[spec["__nd__"]] = np.frombuffer(raw, dtype=dtype).reshape(spec["shape"]).copy()
            pos += size
        del self.buf[:pos]
        return _decode(header, arrays)
