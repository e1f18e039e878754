"""The worker's end of the wire: messages and signals in, replies and signals out.

A `Channel` reads from one descriptor and writes to one file: the worker's stdin/stdout, or,
once a Docker client shared its buffer, the two wake-up FIFOs (`move`). What comes in is a
framed message (a dict) or a signal (one nonzero byte, protocol.py); what goes out is a framed
reply or a signal. Once a buffer is shared, the channel polls for what comes next before it
blocks (`poll.py`, with the budget the client sent in `shm_attach`). The one serve loop over a
channel is server.py's `serve`.

Imports: standard library, numpy and its siblings protocol.py and poll.py only, Python 3.6
syntax (runs in each library's venv).
"""

import os

try:  # run as a script: siblings are on sys.path[0]
    import poll
    import protocol
except ImportError:  # imported as ldm.envs.worker.channel by the in-process backend
    from ldm.envs.worker import poll, protocol


class Channel:
    """One worker's connection to its client (see the module docstring)."""

    def __init__(self, read_fd, out):
        self.reader = protocol.FrameReader(read_fd)
        self.out = out
        self.poller = poll.Poller(0)  # no polling until a buffer is shared

    def receive(self):
        """The next message (a dict) or signal (bytes); EOFError when the client is gone."""
        self.poller.wait(self.reader)
        incoming = self.reader.read_next()
        self.poller.arrived()
        return incoming

    def reply(self, reply):
        """A framed reply; one the protocol cannot carry is replaced by an error reply (an
        info of an odd type must not kill the worker)."""
        try:
            frame = protocol.dumps(reply)
        except Exception as e:
            frame = protocol.dumps({"ok": False, "error": "cannot encode the reply: %s" % e})
        self.out.write(frame)
        self.out.flush()
        self.poller.start()

    def signal(self, byte):
        """One signal byte, straight to the descriptor (frames are flushed as they go)."""
        os.write(self.out.fileno(), byte)
        self.poller.start()

    def poll_for_next(self, budget_s, shares_core):
        """Poll up to `budget_s` seconds for what comes next before blocking (poll.py)."""
        self.poller = poll.Poller(budget_s, shares_core)

    def move(self, read_fd, out):
        """Talk over these from now on (Docker's wake-up FIFOs, shm_worker.open_wake)."""
        self.reader = protocol.FrameReader(read_fd)
        self.out = out
