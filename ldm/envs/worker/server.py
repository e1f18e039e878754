"""The environment worker: serves many env instances of one library over the wire protocol.

Run as a script inside the library's own virtual environment (`python server.py`); `serve`,
its one loop, reads messages and step signals from stdin and answers on stdout (a `Channel`,
channel.py; see protocol.py). The process backend starts it; the in-process backend drives
the same `EnvServer` directly. Legacy `gym` envs are converted to
the Gymnasium 5-tuple API here.

Imports: standard library, numpy, gymnasium or gym (chosen by the `init` message), and its
siblings channel.py (the wire's two ends), env_instance.py (one env: legacy conversion, space descriptions,
declared wrappers), env_imports.py (what a spec's `imports` name), episode_wrappers.py (the
step limit), reseed.py (remaking an env for a seed), wrappers.py (the names) and
shm_worker.py. No torch, no ldm: ldm is not
installed here. Like them it runs on Python 3.6 with numpy 1.x (see legacy.py for what that
rules out; tests/envs/test_worker_compat.py checks it).
"""

import importlib
import os
import sys
import traceback
import warnings

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import env_imports
    import env_instance
    import episode_wrappers
    import reseed
    import shm_worker
    import wrappers
    from channel import Channel
except ImportError:  # imported as ldm.envs.worker.server by the in-process backend
    from ldm.envs.worker import (
        env_imports,
        env_instance,
        episode_wrappers,
        reseed,
        shm_worker,
        wrappers,
    )
    from ldm.envs.worker.channel import Channel

#: the declared wrappers by name (`init`'s argument `wrappers` shadows the module)
DECLARED_WRAPPERS = wrappers.WRAPPERS


def _stack(obs):
    # one buffer on the wire instead of one per env, when the observations allow it
    if obs and all(isinstance(o, np.ndarray) for o in obs):
        if len({(o.shape, o.dtype.str) for o in obs}) == 1:
            return np.stack(obs)
    return obs


def _clean_info(info):
    # infos carry anything; keep what the protocol can hold (it reprs the rest)
    return {k: v for k, v in dict(info).items() if not k.startswith("_")}


class FramedSink:
    """A step's results gathered for a framed reply (arrays, infos and finals in the frame)."""

    def __init__(self, n):
        self.obs = [None] * n
        self.rewards = np.empty(n, dtype=np.float64)
        self.terms = np.empty(n, dtype=bool)
        self.truncs = np.empty(n, dtype=bool)
        self.infos = self.finals = None

    def final(self, i, obs, info):
        if self.finals is None:
            self.finals = [None] * len(self.obs)
        self.finals[i] = {"obs": obs, "info": info}

    def put(self, i, obs, reward, term, trunc, info):
        if info:
            if self.infos is None:
                self.infos = [{} for _ in self.obs]
            self.infos[i] = info
        self.obs[i] = obs
        self.rewards[i] = float(reward)
        self.terms[i] = bool(term)
        self.truncs[i] = bool(trunc)

    def reply(self):
        return {
            "obs": _stack(self.obs),
            "rewards": self.rewards,
            "terminated": self.terms,
            "truncated": self.truncs,
            "infos": self.infos,
            "finals": self.finals,
        }


class EnvServer:
    """Handles protocol messages; one per worker process (or per in-process backend)."""

    def __init__(self):
        self.api = "gymnasium"
        self.gym = None
        self.wrappers = []
        self.envs = {}
        self.next_handle = 0
        self.shared = None  # a shm_worker.SharedSlice once the client shared a buffer
        self.wake = None  # [read path, write path] of the wake-up FIFOs (Docker)
        self.poll_budget = 0.0  # seconds to poll for the next step before blocking (poll.py)
        self.poll_shares_core = False  # the client may run on this worker's core (poll.py)

    # -- commands ------------------------------------------------------------------------
    def init(self, api="gymnasium", imports=(), wrappers=(), paths=()):
        for path in paths:
            if path not in sys.path:
                sys.path.insert(0, path)
        self.api = api
        self.gym = importlib.import_module("gymnasium" if api == "gymnasium" else "gym")
        for name in wrappers:
            if name not in DECLARED_WRAPPERS:
                raise ValueError("unknown wrapper %r" % name)
        self.wrappers = list(wrappers)
        for module in imports:
            env_imports.import_name(module)
        return {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "api": api,
            "api_version": getattr(self.gym, "__version__", "?"),
        }

    def list_ids(self):
        registry = self.gym.envs.registry
        # gym < 0.22 keeps a registry object whose specs are in `env_specs`
        return sorted(getattr(registry, "env_specs", registry).keys())

    def make(self, env_id, kwargs=None, count=1):
        kwargs = dict(kwargs or {})
        limit = kwargs.pop(episode_wrappers.STEP_LIMIT_KWARG, None)
        default_limit = kwargs.pop(episode_wrappers.DEFAULT_STEP_LIMIT_KWARG, None)
        seed_kwarg = reseed.pop_seed_kwarg(kwargs, self.wrappers)
        # no passive env checker: ldm checks each env once (`ldm envs check`), and the checker
        # is one more wrapper call on every step (gym >= 0.24, gymnasium; older: no checker)
        if env_instance.accepts_kwarg(self.gym.make, "disable_env_checker"):
            kwargs.setdefault("disable_env_checker", True)
        handles, spaces = [], None
        for _ in range(int(count)):
            env, legacy_mode = self._make_renderable(env_id, kwargs)
            remake = reseed.remaker(self._make_renderable, env_id, kwargs, seed_kwarg)
            inst = env_instance.Instance(env, self.api, self.wrappers, remake)
            inst.legacy_render_mode = legacy_mode
            if limit:
                inst.env = episode_wrappers.StepLimit(inst.env, limit)
            elif default_limit and not episode_wrappers.has_time_limit(env):
                inst.env = episode_wrappers.StepLimit(inst.env, default_limit)
            handle = self.next_handle
            self.next_handle += 1
            self.envs[handle] = inst
            handles.append(handle)
            spaces = inst.spaces()
        return {"handles": handles, "spaces": spaces}

    def _make_renderable(self, env_id, kwargs):
        """gym.make; a library that does not take `render_mode` at make (legacy gym < 0.26)
        gets it at render() instead: returns (env, that mode or None)."""
        try:
            return self.gym.make(env_id, **kwargs), None
        except TypeError as e:
            if kwargs.get("render_mode") is None or "render_mode" not in str(e):
                raise
        rest = dict((k, v) for k, v in kwargs.items() if k != "render_mode")
        return self.gym.make(env_id, **rest), kwargs["render_mode"]

    def render(self, handles, max_side=0):
        """Frames of some envs: {"frames": [array or None], "notes": [None or why not]}."""
        frames, notes = [], []
        for h in handles:
            frame, note = self.envs[h].frame(max_side)
            frames.append(frame)
            notes.append(note)
        return {"frames": frames, "notes": notes}

    def reset(self, handles, seeds=None, options=None):
        """Reset envs; once a buffer is shared the observations go there, not in the reply."""
        out = self.shared.views if self.shared is not None else None
        seeds = seeds or [None] * len(handles)
        obs, infos = [], []
        for i, (h, seed) in enumerate(zip(handles, seeds)):
            o, info = self.envs[h].env.reset(seed=seed, options=options)
            if out is None:
                obs.append(o)
            else:
                shm_worker.put_obs(out["obs"], i, o)
            infos.append(_clean_info(info))
        if out is not None:
            return {"infos": infos} if any(infos) else {}
        return {"obs": _stack(obs), "infos": infos}

    def step(self, handles, actions, autoreset=False, out=None):
        """Step envs; with `out` (the shared buffer's views) the arrays, final observations
        and numeric infos are written there and the reply holds only what did not fit."""
        n = len(handles)
        sink = FramedSink(n) if out is None else shm_worker.SharedSink(out, self.shared, n)
        # integer actions as Python ints in one call (the common case of Discrete spaces)
        ints = (
            actions.tolist()
            if isinstance(actions, np.ndarray) and actions.ndim == 1 and actions.dtype.kind in "iu"
            else None
        )
        for i, h in enumerate(handles):
            inst = self.envs[h]
            a = (
                ints[i]
                if ints is not None and inst.discrete
                else env_instance.action_for(inst, actions[i])
            )
            o, r, term, trunc, info = inst.env.step(a)
            info = _clean_info(info) if info else {}
            if autoreset and (term or trunc):
                sink.final(i, o, info)
                o, info = inst.env.reset()
                info = _clean_info(info) if info else {}
            sink.put(i, o, r, term, trunc, info)
        return sink.reply()

    def shm_attach(
        self,
        fields,
        size,
        fd=None,
        path=None,
        wake=None,
        poll_us=0,
        poll_shares_core=False,
        autoreset=True,
    ):
        """Map the client's buffer (an inherited descriptor or a mounted file) and answer
        step signals through it from now on (with `autoreset` or without), over the wake-up
        FIFOs `wake` if given, polling for the next signal up to `poll_us` microseconds
        before blocking (see shm_worker.py)."""
        if not self.envs:
            raise ValueError("shm_attach needs the envs made first (their slice is laid out)")
        self.shared = shm_worker.SharedSlice(
            fields, size, sorted(self.envs), bool(autoreset), fd=fd, path=path
        )
        self.wake = wake
        self.poll_budget = max(0.0, float(poll_us)) / 1e6
        self.poll_shares_core = bool(poll_shares_core)
        return {"mapped": size}

    def close(self, handles=None):
        for h in list(self.envs if handles is None else handles):
            inst = self.envs.pop(h, None)
            if inst is not None:
                inst.env.close()
        return {}

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, message):
        cmd = message.get("cmd")
        fn = getattr(self, cmd, None) if cmd in COMMANDS else None
        if fn is None:
            return {"ok": False, "error": "unknown command %r" % cmd}
        args = {k: v for k, v in message.items() if k != "cmd"}
        try:
            return {"ok": True, "result": fn(**args)}
        except Exception as e:  # reported to the client, the worker keeps serving
            return self.failure(e)

    @staticmethod
    def failure(e):
        """The reply for an exception raised by a command (call inside its `except`)."""
        return {
            "ok": False,
            "error": "%s: %s" % (type(e).__name__, e),
            "traceback": traceback.format_exc(),
        }


COMMANDS = ("init", "list_ids", "make", "reset", "step", "render", "close", "shm_attach")


def _die_with_parent():
    # Linux: get SIGKILL when the client dies, so no worker outlives its client.
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def serve(server, channel):
    """Answer the client's messages and step signals over `channel` (channel.py) until it
    closes or asks every env closed: the worker's one loop, before and after a buffer is
    shared."""
    while True:
        try:
            incoming = channel.receive()
        except EOFError:
            return
        if isinstance(incoming, bytes):  # a step signal: the arrays are in the shared buffer
            answer = shm_worker.answer_step(server, incoming)
            if isinstance(answer, bytes):
                channel.signal(answer)
            else:
                channel.reply(answer)
            continue
        reply = server.handle(incoming)
        channel.reply(reply)
        cmd = incoming.get("cmd")
        if cmd == "close" and incoming.get("handles") is None:
            return
        if cmd == "shm_attach" and reply.get("ok"):
            channel.poll_for_next(server.poll_budget, server.poll_shares_core)
            if server.wake:
                channel.move(*shm_worker.open_wake(server.wake))


def main():
    _die_with_parent()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    read_fd = os.dup(sys.stdin.fileno())
    # library code that prints must not corrupt the protocol channel
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    warnings.simplefilter("default")
    serve(EnvServer(), Channel(read_fd, out))


if __name__ == "__main__":
    main()
