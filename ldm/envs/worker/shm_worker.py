"""The worker's side of the shared-memory step path: map the client's buffer, then serve
steps whose arrays live in it.

After a successful `shm_attach` the channel switches to tagged messages, one byte first:

    client -> worker   b"s"            step the slice (actions are in the buffer; autoreset)
                       b"m" + frame    any framed command (reset, close, ...)
    worker -> client   b"."            done, nothing to report (obs, rewards, flags in the buffer)
                       b"m" + frame    a framed reply (infos, final observations, errors)

so a step whose infos are empty moves no array through the pipe and encodes nothing: the
byte only wakes the other side (a blocking read, no spinning). The buffer is mapped from an
inherited file descriptor (process and sandbox backends) or from a bind-mounted file (Docker);
the client created it and owns its lifetime.

Imports: standard library and numpy only, Python 3.6 syntax (runs in each library's venv).
"""

import mmap
import os

import numpy as np

STEP = b"s"
FRAMED = b"m"
DONE = b"."


class SharedSlice:
    """Numpy views on this worker's slice of the batch, laid out by the client."""

    def __init__(self, fields, size, fd=None, path=None):
        if fd is None:
            fd = os.open(path, os.O_RDWR)
            try:
                self.mm = mmap.mmap(fd, size)
            finally:
                os.close(fd)
        else:
            self.mm = mmap.mmap(fd, size)
            os.close(fd)  # the mapping keeps the memory; the descriptor is no longer needed
        self.views = {}
        for f in fields:
            dtype = np.dtype(f["dtype"])
            count = 1
            for k in f["shape"]:
                count *= k
            arr = np.frombuffer(self.mm, dtype=dtype, count=count, offset=f["offset"])
            self.views[f["name"]] = arr.reshape(f["shape"])

    def close(self):
        self.views = {}
        try:
            self.mm.close()
        except BufferError:  # a view still alive somewhere: the process exit unmaps it
            pass


def serve(server, reader, out, protocol):
    """Serve tagged messages until EOF or a `close` of all envs (see the module docstring)."""
    views = server.shared.views
    handles = sorted(server.envs)
    step = {
        "cmd": "step",
        "handles": handles,
        "actions": views["actions"],
        "autoreset": True,
        "out": views,
    }
    while True:
        try:
            tag = read_tag(reader)
        except EOFError:
            return
        if tag == STEP:
            reply = server.handle(step)
            result = reply.get("result")
            if reply.get("ok") and not result:
                out.write(DONE)
                out.flush()
                continue
        elif tag == FRAMED:
            try:
                message = reader.read_message()
            except EOFError:
                return
            if message.get("cmd") == "reset":
                message["out"] = views
            reply = server.handle(message)
            if message.get("cmd") == "close" and message.get("handles") is None:
                _write(out, reply, protocol)
                return
        else:
            reply = {"ok": False, "error": "unknown tag %r on the shared-memory channel" % tag}
        _write(out, reply, protocol)


def read_tag(reader, deadline=None):
    """The next tag byte from a protocol.FrameReader (None on timeout; EOFError when closed)."""
    if not reader._fill(1, deadline):
        return None
    tag = bytes(reader.buf[:1])
    del reader.buf[:1]
    return tag


def _write(out, reply, protocol):
    try:
        frame = protocol.dumps(reply)
    except Exception as e:  # an info the protocol cannot carry must not kill the worker
        frame = protocol.dumps({"ok": False, "error": "cannot encode the reply: %s" % e})
    out.write(FRAMED + frame)
    out.flush()
