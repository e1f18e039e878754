"""A `gymnasium.Env` whose env lives in an isolated worker, and what both proxies share.

Owns: `ProxyEnv`, `ProxyWorker` (one connection plus the handles of the envs it serves and
their step handle, ldm/envs/transport/steps.py, restartable), `space_from_desc` (the worker's space descriptions -> gymnasium spaces) and
`check_actions`/`check_action` (an action outside the space is an EnvError naming it, before
it is sent; one check for the single and the vector proxy).
The vector proxy is ldm/envs/vector.py.

Imports gymnasium, numpy, the backends, ldm.envs.transport.messages, steps and shm; must not import an
environment library (they live in the workers), torch, or any later part (data, refgen, model,
...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from ldm.envs.gym_spec import env_spec
from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.transport import messages, shm
from ldm.envs.transport.backends import launch
from ldm.envs.transport.connection import DEFAULT_TIMEOUT, Connection
from ldm.envs.transport.steps import FramedSteps, Steps
from ldm.errors import EnvError

#: wire description type -> gymnasium space (ldm/envs/worker/space_desc.py `describe_space`)
_FROM_DESC: dict[str, Callable[[dict[str, Any]], gym.Space]] = {
    "Box": lambda d: gym.spaces.Box(
        low=np.asarray(d["low"]),
        high=np.asarray(d["high"]),
        shape=tuple(d["shape"]),
        dtype=np.dtype(d["dtype"]),
    ),
    "Discrete": lambda d: gym.spaces.Discrete(d["n"], start=d.get("start", 0)),
    "MultiDiscrete": lambda d: gym.spaces.MultiDiscrete(np.asarray(d["nvec"])),
    "MultiBinary": lambda d: gym.spaces.MultiBinary(d["n"]),
    "Dict": lambda d: gym.spaces.Dict({k: space_from_desc(v) for k, v in d["spaces"].items()}),
    "Tuple": lambda d: gym.spaces.Tuple([space_from_desc(v) for v in d["spaces"]]),
}


def space_from_desc(d: dict[str, Any]) -> gym.Space:
    """A space description from the worker -> a gymnasium space."""
    build = _FROM_DESC.get(d["type"])
    if build is None:
        raise EnvError(
            f"space type {d.get('name', d['type'])!r} is not supported; declare a wrapper in the "
            "library spec that removes or converts it (e.g. grid_as_image for MiniGrid's "
            "mission text)"
        )
    return build(d)


def _box_rows(space: gym.spaces.Box, a: np.ndarray) -> bool:
    a = a.astype(space.dtype, copy=False)
    return a.shape[1:] == space.shape and not ((a < space.low) | (a > space.high)).any()


def _discrete_rows(space: gym.spaces.Discrete, a: np.ndarray) -> bool:
    if a.ndim != 1 or a.dtype.kind not in "iubf":
        return False
    values = a.tolist()  # Python's min/max: faster than two numpy reductions on a batch
    if a.dtype.kind == "f" and any(v != int(v) for v in values):
        return False
    return space.start <= min(values) and max(values) < space.start + space.n


#: space type -> check of a whole batch of actions at once (others: `space.contains` per row)
_BATCH_CHECKS: dict[type, Callable[[Any, np.ndarray], bool]] = {
    gym.spaces.Box: _box_rows,
    gym.spaces.Discrete: _discrete_rows,
}


def _contains(space: gym.Space, action: Any) -> bool:
    try:
        plain = np.isscalar(action) or isinstance(action, (dict, tuple))
        return bool(space.contains(action if plain else np.asarray(action)))
    except Exception:
        return False


def check_actions(env_id: str, space: gym.Space, actions: Any, count: int) -> Any:
    """The `count` actions of a batch, checked against the single-env `space` (EnvError naming
    them and the space when one is outside it); a Box batch comes back in the space's dtype."""
    if isinstance(actions, dict) or isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        rows = list(actions) if not isinstance(actions, dict) else [actions]
        ok = len(rows) == count and all(_contains(space, a) for a in rows)
    else:
        actions = np.asarray(actions)
        if actions.ndim == 0 or len(actions) != count:
            n = 1 if actions.ndim == 0 else len(actions)
            raise EnvError(f"{env_id}: {n} actions for {count} envs")
        check = _BATCH_CHECKS.get(type(space))
        ok = check(space, actions) if check else all(_contains(space, a) for a in actions)
        if ok and isinstance(space, gym.spaces.Box):
            actions = actions.astype(space.dtype, copy=False)
    if not ok:
        shown = actions.tolist() if isinstance(actions, np.ndarray) else actions
        raise EnvError(f"{env_id}: actions {shown!r} outside the action space {space}")
    return actions


def check_action(env_id: str, space: gym.Space, action: Any) -> Any:
    """One env's action, checked as a batch of one (see `check_actions`)."""
    if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        return check_actions(env_id, space, [action], 1)[0]
    return check_actions(env_id, space, np.asarray(action)[None], 1)[0]


def _frames(env_id: str, reply: dict[str, Any]) -> list[np.ndarray]:
    for note in reply["notes"]:
        if note:
            raise EnvError(f"{env_id} cannot render: {note}")
    return reply["frames"]


class ProxyWorker:
    """One connection plus the handles of the envs it serves and their step handle
    (steps.py: shared-memory where the backend can, else framed), restartable."""

    def __init__(
        self,
        spec: LibrarySpec,
        rid: str,
        kwargs: dict,
        backend: str,
        sandbox: bool,
        label: str,
        count: int,
        shared_memory: bool = True,
        start_timeout: float = DEFAULT_TIMEOUT,
        start: bool = True,
        poll: shm.PollBudgets | None = None,
        autoreset: bool = True,
    ):
        """`start=False`: the caller calls `launch` then `ready` (the vector env launches all
        its workers before awaiting any); `poll`: how long each side polls for the other,
        from the vector env's layout (shm.poll_budgets; None: a lone worker's); `autoreset`:
        its steps reset an env whose episode ended (a vector env's do, a single env's not)."""
        self.spec, self.rid, self.kwargs = spec, rid, kwargs
        self.backend, self.sandbox, self.label, self.count = backend, sandbox, label, count
        self.shared_memory = shared_memory
        self.poll = poll
        self.autoreset = autoreset
        self.start_timeout = start_timeout  # the library's imports and make
        self.conn: Connection | None = None
        self.steps: Steps | None = None
        self.handles: list[int] = []
        self.spaces: dict[str, Any] = {}
        if start:
            self.start()

    def start(self) -> None:
        self.launch()
        self.ready()

    def launch(self) -> None:
        """Start the worker and send it `init` and `make`, without waiting for the replies."""
        self.conn = launch(self.backend, self.spec, self.label, self.sandbox)
        try:
            self.conn.send(messages.make(self.rid, self.kwargs, self.count))
        except BaseException:
            self.close()
            raise

    def ready(self) -> None:
        """Take the replies to `init` and `make` (the library's imports and the envs' making
        may take `start_timeout` each), then share the step buffer where the backend can."""
        assert self.conn is not None
        try:
            self.conn.recv(self.start_timeout)  # init
            made = self.conn.recv(self.start_timeout)
        except BaseException:
            self.close()
            raise
        self.handles, self.spaces = made["handles"], made["spaces"]
        shared = self.shared_memory and shm.attach(
            self.conn, self.handles, self.spaces, self.autoreset, self.poll
        )
        self.steps = shared or FramedSteps(self.conn, self.handles, self.autoreset)

    def restart(self) -> None:
        self.close()
        self.start()

    @property
    def alive(self) -> bool:
        return self.conn is not None and self.conn.alive

    def close(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class ProxyEnv(gym.Env):
    """A single env living in a worker. A dead worker is restarted on the next `reset()`.
    Made with `render_mode="rgb_array"`, `render()` returns the worker's frame."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        spec: LibrarySpec,
        rid: str,
        backend: str = "process",
        sandbox: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ):
        self.env_id = f"{spec.name}/{rid}"
        self.timeout = timeout
        self._worker = ProxyWorker(
            spec,
            rid,
            {**spec.kwargs_for(rid), **kwargs},
            backend,
            sandbox,
            self.env_id,
            1,
            # the library's imports may take longer than a step: `timeout` bounds steps only
            start_timeout=max(timeout, DEFAULT_TIMEOUT),
            autoreset=False,
        )
        self.observation_space = space_from_desc(self._worker.spaces["observation"])
        self.action_space = space_from_desc(self._worker.spaces["action"])
        self.render_mode = kwargs.get("render_mode")
        # what recreates this env (Gymnasium's check_env, Minari's recover_environment);
        # gymnasium.make replaces it with its own, equal one
        self.spec = env_spec(
            self.env_id, backend=backend, sandbox=sandbox, timeout=timeout, **kwargs
        )
        self._closed = False

    def render(self) -> np.ndarray:
        """The env's current frame (H, W, 3) uint8; EnvError naming why when it has none."""
        if self.render_mode is None:
            raise EnvError(f"{self.env_id}: make the env with render_mode='rgb_array' to render")
        return _frames(self.env_id, self._call(messages.render(self._worker.handles)))[0]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if not self._worker.alive:
            self._worker.restart()
        steps = self._steps()
        steps.reset_send([seed], options)
        r = steps.reset_recv(self.timeout)
        return r.obs[0], r.infos[0]

    def step(self, action):
        a = check_action(self.env_id, self.action_space, action)
        steps = self._steps()
        steps.step_send([a])
        r = steps.step_recv(self.timeout)
        return (
            r.obs[0],
            float(r.rewards[0]),
            bool(r.terminated[0]),
            bool(r.truncated[0]),
            r.infos[0] if r.infos else {},
        )

    def _steps(self) -> Steps:
        if self._closed:
            raise EnvError(f"{self.env_id}: the env is closed")
        assert self._worker.steps is not None
        return self._worker.steps

    def _call(self, msg: dict) -> Any:
        if self._closed:
            raise EnvError(f"{self.env_id}: the env is closed")
        assert self._worker.conn is not None
        return self._worker.conn.call(msg, timeout=self.timeout)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._worker.close()
