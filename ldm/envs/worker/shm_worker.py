"""The worker's side of the shared-memory step path: map the client's buffer, then serve
steps whose arrays live in it.

After a successful `shm_attach` the channel switches to tagged messages, one byte first:

    client -> worker   b"s"            step the slice (actions are in the buffer; autoreset)
                       b"m" + frame    any framed command (reset, close, ...)
    worker -> client   b"."            done: obs, rewards, flags in the buffer, no episode ended
                                       and no infos
                       b","            done, and read the buffer's final flags (final
                                       observations) and info slots too
                       b"m" + frame    a framed reply (infos that do not fit the slots, a new
                                       info key, errors)

so a step moves no array through the pipe and encodes nothing when its infos are numeric
scalars: the byte only wakes the other side (polled for a while, then a blocking read). Info
slots: each env has INFO_SLOTS float64 values with presence flags, for its step info and for
the info of an episode's last step; a key takes the next free slot the first time it is
seen, and that step's reply is framed with the new key list (`info_keys`: [name, kind] in slot
order). A step with an info the slots cannot hold (a string, an array, a new key past the last slot, an int
past 2**53, a key whose kind changed) sends all its infos framed instead (`infos`,
`final_infos`). The buffer is mapped from an inherited file descriptor (process and sandbox
backends) or from a bind-mounted file (Docker); the client created it and owns its lifetime.
Docker also bind-mounts two FIFOs (`open_wake`): the tagged channel runs over them instead of
the container's stdin/stdout, which the engine relays through two more processes each way.
Before a blocking read the worker polls for the next tag for a while (`poll.py`: bounded,
adaptive, within the budget the client sent with `shm_attach`).

Imports: standard library and numpy only, Python 3.6 syntax (runs in each library's venv).
"""

import errno
import mmap
import os
import time

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import poll
except ImportError:  # imported as ldm.envs.worker.shm_worker by the client
    from ldm.envs.worker import poll

STEP = b"s"
FRAMED = b"m"
DONE = b"."
SLOTS = b","
INFO_SLOTS = 16  # numeric info keys per env held in the buffer (client: ldm/envs/shm.py)
ALL_IN_BUFFER = {"slots": True}  # a step reply with nothing framed: the SLOTS tag says it
MAX_INT = 2**53  # ints travel as float64 in the slots: exact up to here


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
        self.info_keys = {}  # info key -> (slot, kind), in the order keys were first seen
        self.flagged = True  # final or info flags may be set: the next step clears them

    def close(self):
        self.views = {}
        try:
            self.mm.close()
        except BufferError:  # a view still alive somewhere: the process exit unmaps it
            pass


def put_obs(view, i, obs):
    """An observation into its row of the buffer (laid out from the observation space)."""
    try:
        view[i] = obs
    except (ValueError, TypeError):
        raise ValueError(
            "observation %r does not fit the observation space (shape %s, dtype %s): the env "
            "breaks its own space; fix it with a wrapper, or use make_vec(shared_memory=False)"
            % (getattr(obs, "shape", obs), list(view.shape[1:]), view.dtype)
        ) from None


#: info slot kind (`info_kind`) -> the Python type the framed path would give (the client's
#: ShmCodec reads slots back as these)
INFO_TYPES = {"b": bool, "i": int, "f": float}


def info_kind(value):
    """The kind ("b", "i" or "f") of a scalar the info slots hold exactly, else None."""
    if isinstance(value, (bool, np.bool_)):
        return "b"
    if isinstance(value, (int, np.integer)):
        return "i" if -MAX_INT <= value <= MAX_INT else None
    if isinstance(value, (float, np.floating)):
        return "f"
    return None


class SharedSink:
    """A step's results written into the buffer: arrays, final observations, and infos in
    the slots while they fit (else all of the step's infos framed: see the docstring).
    Rewards and flags are gathered in lists and written once per step; the final and info
    flags are cleared only after a step that set some."""

    def __init__(self, views, shared, n):
        self.v = views
        self.obs = views["obs"]
        self.shared = shared
        self.keys = shared.info_keys
        self.new_keys = False
        self.spill = False  # some info does not fit the slots: this step's infos go framed
        self.any = False  # something beyond the arrays: a final flag or an info in a slot
        self.rewards = [0.0] * n
        self.terms = [False] * n
        self.truncs = [False] * n
        self.infos = None  # per env, made on the first info (sent only when they spill)
        self.final_infos = None
        if shared.flagged:
            views["final"][:] = False
            views["info_present"][:] = False
            views["final_info_present"][:] = False
            shared.flagged = False

    def _slot(self, values, present, i, info):
        self.shared.flagged = True
        for key, value in info.items():
            kind = info_kind(value)
            entry = self.keys.get(key)
            if entry is None and kind is not None and len(self.keys) < values.shape[1]:
                entry = self.keys[key] = (len(self.keys), kind)
                self.new_keys = True
            if entry is None or entry[1] != kind:
                self.spill = True
                return
            values[i, entry[0]] = value
            present[i, entry[0]] = True
        self.any = True

    def final(self, i, obs, info):
        put_obs(self.v["final_obs"], i, obs)
        self.shared.flagged = True
        self.v["final"][i] = True
        self.any = True
        if self.final_infos is None:
            self.final_infos = [None] * len(self.rewards)
        self.final_infos[i] = info
        if info and not self.spill:
            self._slot(self.v["final_info_values"], self.v["final_info_present"], i, info)

    def put(self, i, obs, reward, term, trunc, info):
        try:
            self.obs[i] = obs
        except (ValueError, TypeError):
            put_obs(self.obs, i, obs)  # raises the error that names the space
        self.rewards[i] = float(reward)
        self.terms[i] = bool(term)
        self.truncs[i] = bool(trunc)
        if info:
            if self.infos is None:
                self.infos = [{}] * len(self.rewards)  # entries are replaced, never mutated
            self.infos[i] = info
            if not self.spill:
                self._slot(self.v["info_values"], self.v["info_present"], i, info)

    def reply(self):
        v = self.v
        v["rewards"][:] = self.rewards
        v["terminated"][:] = self.terms
        v["truncated"][:] = self.truncs
        reply = {"slots": True} if self.any or self.spill else {}
        if self.spill:
            n = len(self.rewards)
            reply.update(infos=self.infos or [{}] * n, final_infos=self.final_infos or [None] * n)
        if self.new_keys:
            order = sorted(self.keys.items(), key=lambda kv: kv[1][0])
            reply["info_keys"] = [[k, entry[1]] for k, entry in order]
        return reply


def serve(server, reader, out, protocol):
    """Serve tagged messages until EOF or a `close` of all envs (see the module docstring)."""
    views = server.shared.views
    handles = sorted(server.envs)
    actions = views["actions"]
    fd = out.fileno()  # wake-up bytes go straight to the pipe (`out` is flushed after frames)
    poller = poll.Poller(server.poll_budget, server.poll_shares_core)
    while True:
        try:
            poller.wait(reader)
            tag = read_tag(reader)
        except EOFError:
            return
        poller.arrived()
        if tag == STEP:
            try:
                result = server.step(handles, actions, True, views)
            except Exception as e:  # reported to the client, the worker keeps serving
                reply = server.failure(e)
            else:
                if result == {} or result == ALL_IN_BUFFER:
                    os.write(fd, SLOTS if result else DONE)
                    poller.start()
                    continue
                reply = {"ok": True, "result": result}
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
        poller.start()


def open_fifo_writer(path, deadline, alive=lambda: True):
    """The writing end of a FIFO, opened without blocking: retried while no reader has it
    open (ENXIO) until `deadline` (time.time()) or until `alive()` is false, then OSError."""
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.time() > deadline or not alive():
                raise
            time.sleep(0.001)


def open_wake(paths, timeout=60.0):
    """Open the client's two wake-up FIFOs (Docker, where no descriptor crosses `docker run`
    and stdin/stdout are relayed by the engine): the first to read from, the second to write
    to. Returns (read fd, write file) after a handshake byte; the client holds the other ends,
    so its death is this side's EOF."""
    inp = os.open(paths[0], os.O_RDONLY | os.O_NONBLOCK)
    out = open_fifo_writer(paths[1], time.time() + timeout)
    for fd in (inp, out):
        os.set_blocking(fd, True)
    os.write(out, DONE)
    return inp, os.fdopen(out, "wb")


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
