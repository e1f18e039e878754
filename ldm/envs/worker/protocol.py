"""Wire protocol between an ldm client and an environment worker: framed JSON + raw arrays.

Version-neutral on purpose (no pickle): a worker on Python 3.8 with numpy 1.x talks to a
client on Python 3.11 with numpy 2.x. A frame is

    8-byte big-endian header length n | 8-byte big-endian buffer length m |
    header (n bytes of UTF-8 JSON) | array buffers (m bytes)

Between frames a side may send a signal: one nonzero byte, told from a frame by its first
byte (a frame's is the high byte of its header length, always 0); the shared-memory step path
uses them (shm_worker.py). `FrameReader.read_next` returns either.

Inside the header, every numpy array is replaced by {"__nd__": byte offset, "dtype": str,
"shape": [...]} and its C-contiguous bytes sit at that offset of the buffers. Tuples travel as
lists, numpy scalars as Python scalars, NaN and infinities as JSON's NaN/Infinity tokens;
anything else JSON cannot hold is sent as {"__repr__": repr(value)} and arrives as that string
(infos may carry objects; a default repr's memory address is left out).

Speed: encoding runs in json's C encoder (arrays and numpy scalars reach Python only through
its `default` hook) and decoding in its C parser (arrays are built by the `object_hook` as
their placeholders are parsed), so a step of a light env costs a few microseconds of protocol.

Imports: standard library and numpy only. This file is copied into nothing and imported by
the worker script from its own directory, inside each library's virtual environment.
"""

import json
import os
import re
import select
import struct
import time

import numpy as np

_LENS = struct.Struct(">QQ")
#: the memory address in an object's default repr (`<Reward object at 0x7f..>`): it differs
#: between two episodes of the same seed and says nothing, so it does not cross the wire
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
MAX_HEADER = 1 << 30
MAX_BUFFERS = 1 << 40


def _str_keys(value):
    # json accepts only str/int/float/bool/None keys: the slow path for anything else
    if isinstance(value, dict):
        return {
            (k if isinstance(k, (str, int, float, bool)) or k is None else str(k)): _str_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_str_keys(v) for v in value]
    return value


def dumps(message):
    """Encode a message (dict) into the bytes of one frame."""
    arrays = []
    offset = [0]

    def default(value):
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return value.tolist()
            arr = np.ascontiguousarray(value)
            arrays.append(arr)
            spec = {"__nd__": offset[0], "dtype": arr.dtype.str, "shape": list(arr.shape)}
            offset[0] += arr.nbytes
            return spec
        if isinstance(value, np.generic):
            item = value.item()
            if isinstance(item, (bool, int, float, str)):
                return item
        return {"__repr__": _ADDRESS.sub("", repr(value))}

    try:
        text = json.dumps(message, default=default, separators=(",", ":"))
    except TypeError:  # a dict key json cannot hold
        arrays.clear()
        offset[0] = 0
        text = json.dumps(_str_keys(message), default=default, separators=(",", ":"))
    header = text.encode("utf-8")
    parts = [_LENS.pack(len(header), offset[0]), header]
    parts.extend(a.tobytes() for a in arrays)
    return b"".join(parts)


def _loads(header, buffers):
    def hook(d):
        if "__nd__" in d:
            dtype = np.dtype(d["dtype"])
            shape = d["shape"]
            count = 1
            for k in shape:
                count *= k
            arr = np.frombuffer(buffers, dtype=dtype, count=count, offset=d["__nd__"])
            return arr.reshape(shape).copy()
        if "__repr__" in d and len(d) == 1:
            return d["__repr__"]
        return d

    return json.loads(header.decode("utf-8"), object_hook=hook)


def _check_lengths(n, m):
    if n > MAX_HEADER or m > MAX_BUFFERS:
        raise ValueError("frame of %d + %d bytes is over the limit: corrupted stream" % (n, m))


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
    n, m = _LENS.unpack(_read_exact(stream, _LENS.size))
    _check_lengths(n, m)
    header = _read_exact(stream, n)
    return _loads(header, _read_exact(stream, m) if m else b"")


class FrameReader:
    """Reads frames from a raw file descriptor with a timeout, without a helper thread.

    `read_message(timeout)` returns the next message, None on timeout, or raises EOFError.
    """

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, n, deadline):
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
        deadline = None if timeout is None else time.monotonic() + timeout
        return self._read_frame(deadline)

    def read_next(self, timeout=None):
        """The next message, or a signal (one nonzero byte, returned as bytes: a frame starts
        with the zero high byte of its header length), or None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._fill(1, deadline):
            return None
        if self.buf[0]:
            signal = bytes(self.buf[:1])
            del self.buf[:1]
            return signal
        return self._read_frame(deadline)

    def _read_frame(self, deadline):
        if not self._fill(_LENS.size, deadline):
            return None
        n, m = _LENS.unpack(bytes(self.buf[: _LENS.size]))
        _check_lengths(n, m)
        end = _LENS.size + n + m
        if not self._fill(end, deadline):
            return None
        header = bytes(self.buf[_LENS.size : _LENS.size + n])
        buffers = bytes(self.buf[_LENS.size + n : end])
        del self.buf[:end]
        return _loads(header, buffers)
