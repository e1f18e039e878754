"""The worker's side of the shared-memory step path: map the client's buffer, then answer
step signals with the arrays in it.

After a successful `shm_attach` the client may send, besides framed messages, the signal
(one nonzero byte between frames, protocol.py):

    client -> worker   b"s"            step the slice (actions are in the buffer; with
                                       autoreset if `shm_attach` asked for it)
    worker -> client   b"."            done: obs, rewards, flags in the buffer, no episode ended
                                       and no infos
                       b","            done, and read the buffer's final flags (final
                                       observations) and info slots too
                       a framed reply  infos that do not fit the slots, a new info key, errors

so a step moves no array through the pipe and encodes nothing when its infos are numeric
scalars: the byte only wakes the other side (polled for a while, then a blocking read). A
`reset` after the attach writes its observations into the buffer too. Info
slots: each env has INFO_SLOTS float64 values with presence flags, for its step info and for
the info of an episode's last step; a key takes the next free slot the first time it is
seen, and that step's reply is framed with the new key list (`info_keys`: [name, kind] in slot
order). A step with an info the slots cannot hold (a string, an array, a new key past the last slot, an int
past 2**53, a key whose kind changed) sends all its infos framed instead (`infos`,
`final_infos`). The buffer is mapped from an inherited file descriptor (process and sandbox
backends) or from a bind-mounted file (Docker); the client created it and owns its lifetime.
Docker also bind-mounts two FIFOs (`open_wake`): the channel runs over them instead of
the container's stdin/stdout, which the engine relays through two more processes each way.
Before a blocking read the worker polls for the next signal for a while (`poll.py`: bounded,
adaptive, within the budget the client sent with `shm_attach`; channel.py). The serve loop
is server.py's `serve`; the client's end is ldm/envs/transport/shm.py `SharedSteps`.

Imports: standard library and numpy only, Python 3.6 syntax (runs in each library's venv).
"""

import errno
import mmap
import os
import time

import numpy as np

STEP = b"s"
DONE = b"."
SLOTS = b","
INFO_SLOTS = 16  # numeric info keys per env held in the buffer (client: ldm/envs/transport/shm.py)
ALL_IN_BUFFER = {"slots": True}  # a step reply with nothing framed: the SLOTS tag says it
MAX_INT = 2**53  # ints travel as float64 in the slots: exact up to here


class SharedSlice:
    """Numpy views on this worker's slice of the batch, laid out by the client."""

    def __init__(self, fields, size, handles, autoreset=True, fd=None, path=None):
        self.handles = handles  # the envs of the slice, in row order
        self.autoreset = autoreset  # a step signal resets an env whose episode ended
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
#: SharedSteps reads slots back as these)
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


def answer_step(server, signal):
    """The answer to a signal: DONE or SLOTS when the step's results are all in the buffer,
    else a reply to frame (what did not fit, or the error)."""
    shared = server.shared
    if signal != STEP or shared is None:
        return {"ok": False, "error": "unknown signal %r on the worker's channel" % signal}
    views = shared.views
    try:
        result = server.step(shared.handles, views["actions"], shared.autoreset, views)
    except Exception as e:  # reported to the client, the worker keeps serving
        return server.failure(e)
    if result == {} or result == ALL_IN_BUFFER:
        return SLOTS if result else DONE
    return {"ok": True, "result": result}


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
