"""A `gymnasium.vector.VectorEnv` whose envs live in isolated workers.

A vector proxy spreads its envs over a few worker processes, sends each worker its slice of
the actions, then collects the replies: one round trip per batch step, workers stepping in
parallel, autoreset inside the worker (Gymnasium's SAME_STEP mode: the final observation of a
finished episode is in `infos["final_obs"]`). Where a worker can share memory (process,
sandbox and Docker backends; see shm.py) its slice of the batch travels through a shared buffer
and a step costs one wake-up byte each way. `send`/`recv` step asynchronously in the manner of
EnvPool: send to all, take the first envs that are ready.

Owns: `ProxyVectorEnv` and the batching of worker replies. Imports gymnasium, numpy, the
backends, ldm.envs.transport.messages, ldm.envs.proxy and ldm.envs.transport.shm; must not import an environment library, torch, or
any later part.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.proxy import ProxyWorker, check_actions, space_from_desc
from ldm.envs.transport import messages
from ldm.envs.transport.connection import DEFAULT_TIMEOUT, WorkerError
from ldm.envs.transport.shm import poll_budgets
from ldm.envs.transport.steps import Final, StepResult, Steps
from ldm.errors import EnvError


def _concat(parts: list) -> Any:
    """Join per-worker batches: stacked arrays, or lists of per-env values (dict obs)."""
    if all(isinstance(p, np.ndarray) for p in parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    items = [x for p in parts for x in p]
    if isinstance(items[0], dict):
        return {k: np.stack([o[k] for o in items]) for k in items[0]}
    return np.stack(items)


class ProxyVectorEnv(gym.vector.VectorEnv):
    """`num_envs` copies of one env, spread over `workers` worker processes."""

    def __init__(
        self,
        spec: LibrarySpec,
        rid: str,
        num_envs: int,
        backend: str = "process",
        workers: int | None = None,
        sandbox: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        shared_memory: bool = True,
        poll_us: float | None = None,
        **kwargs: Any,
    ):
        if num_envs < 1:
            raise EnvError(f"num_envs must be >= 1, got {num_envs}")
        self.env_id = f"{spec.name}/{rid}"
        self.timeout = timeout
        self.num_envs = num_envs
        w = max(1, min(num_envs, workers or os.cpu_count() or 1))
        poll = poll_budgets(w, poll_us)  # once: a bad budget is refused before any start
        sizes = [num_envs // w + (1 if i < num_envs % w else 0) for i in range(w)]
        kw = {**spec.kwargs_for(rid), **kwargs}

        self._workers = [
            ProxyWorker(
                spec,
                rid,
                kw,
                backend,
                sandbox,
                f"{self.env_id}[w{i}]",
                n,
                shared_memory,
                start=False,
                poll=poll,
            )
            for i, n in enumerate(sizes)
        ]
        try:
            # all are launched before any reply is awaited: the workers import their library
            # and make their envs at the same time
            for worker in self._workers:
                worker.launch()
            for worker in self._workers:
                worker.ready()
        except BaseException:
            self.close()
            raise
        first = self._workers[0].spaces
        self.single_observation_space = space_from_desc(first["observation"])
        self.single_action_space = space_from_desc(first["action"])
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_modes": []}
        self._slices = np.cumsum([0] + sizes)
        self._pending: list[int] = []  # workers sent an async step, not yet received
        self._closed = False

    # -- helpers ---------------------------------------------------------------------------
    def _scatter(self, send: Callable[[int, Steps], None], recv: Callable[[Steps], Any]) -> list:
        """`send(i, steps)` to every worker, then `recv(steps)` from each, in order."""
        self._send_all(send, recv)
        return self._gather(recv, self._workers)

    def _send_all(self, send: Callable[[int, Steps], None], recv: Callable[[Steps], Any]) -> None:
        if self._closed:
            raise EnvError(f"{self.env_id}: the vector env is closed")
        for i, w in enumerate(self._workers):
            try:
                assert w.steps is not None
                send(i, w.steps)
            except WorkerError:
                for sent in self._workers[:i]:  # drain the replies owed: keep them in sync
                    try:
                        recv(sent.steps)
                    except WorkerError:
                        pass
                raise

    def _gather(self, recv: Callable[[Steps], Any], workers: list[ProxyWorker]) -> list:
        replies, error = [], None
        for w in workers:
            try:
                replies.append(recv(w.steps))
            except WorkerError as e:  # collect the others' replies first: keep them in sync
                error = error or e
                replies.append(None)
        if error:
            raise error
        return replies

    def render_frames(self, indices: list[int], max_side: int = 0) -> list[Any]:
        """Frames of some sub-envs (made with render_mode="rgb_array"): per index an (H, W, 3)
        uint8 array, thinned to at most `max_side` pixels a side in the worker, or the reason it
        has none (a str)."""
        out: list[Any] = []
        for i in indices:
            w = int(np.searchsorted(self._slices, i, side="right")) - 1
            worker = self._workers[w]
            assert worker.conn is not None
            r = worker.conn.call(
                messages.render([worker.handles[i - self._slices[w]]], max_side),
                timeout=self.timeout,
            )
            out.append(r["frames"][0] if r["frames"][0] is not None else r["notes"][0])
        return out

    def restart_dead_workers(self) -> int:
        """Restart every dead worker (its envs must then be reset); returns how many."""
        dead = [w for w in self._workers if not w.alive]
        for w in dead:
            w.restart()
        return len(dead)

    # -- VectorEnv API -----------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if isinstance(seed, int):
            seeds: list[int | None] = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed) if seed is not None else [None] * self.num_envs
        if len(seeds) != self.num_envs:
            raise EnvError(f"{self.env_id}: {len(seeds)} seeds for {self.num_envs} envs")
        self._drain_pending()
        self.restart_dead_workers()
        starts = self._slices
        replies = self._scatter(
            lambda i, s: s.reset_send(seeds[starts[i] : starts[i + 1]], options),
            lambda s: s.reset_recv(self.timeout),
        )
        infos = [i for r in replies for i in r.infos]
        return _concat([r.obs for r in replies]), self._merge_infos(infos)

    def _check_actions(self, actions, count: int):
        return check_actions(self.env_id, self.single_action_space, actions, count)

    def step_send(self, actions) -> None:
        """First half of `step`: check the actions and send them to the workers (the envs of
        several vector envs then step in parallel; `step_recv` collects)."""
        if self._pending:
            raise EnvError(f"{self.env_id}: an async `send` is still pending; `recv` it first")
        actions = self._check_actions(actions, self.num_envs)
        starts = self._slices
        self._send_all(lambda i, s: s.step_send(actions[starts[i] : starts[i + 1]]), self._recv)

    def step(self, actions):
        self.step_send(actions)
        return self.step_recv()

    def step_recv(self):
        """Second half of `step`: the workers' replies as (obs, rewards, terminated, truncated, infos)."""
        return self._assemble(
            list(range(len(self._workers))), self._gather(self._recv, self._workers)
        )

    def _recv(self, steps: Steps) -> StepResult:
        return steps.step_recv(self.timeout)

    # -- EnvPool-style asynchronous stepping ----------------------------------------------
    def send(self, actions, env_ids=None) -> None:
        """Send actions to the envs `env_ids` (default all; whole worker slices, e.g. the ids
        the last `recv` returned) and return at once; `recv` takes the first ready envs."""
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, dtype=np.int64)
        owner = np.searchsorted(self._slices, ids, side="right") - 1
        targets = [int(i) for i in dict.fromkeys(owner.tolist())]
        for i in targets:
            a, b = self._slices[i], self._slices[i + 1]
            if i in self._pending or sorted(ids[owner == i].tolist()) != list(range(a, b)):
                raise EnvError(
                    f"{self.env_id}: send to envs {a}..{b - 1} of worker {i} all together, and "
                    "only after `recv` returned them (pending workers: "
                    f"{sorted(self._pending)})"
                )
        actions = self._check_actions(actions, len(ids))
        by_env = dict(zip(ids.tolist(), range(len(ids))))
        for i in targets:
            rows = [by_env[e] for e in range(self._slices[i], self._slices[i + 1])]
            steps = self._workers[i].steps
            assert steps is not None
            steps.step_send(actions[rows])
            self._pending.append(i)

    def recv(self, min_envs: int | None = None, timeout: float | None = None):
        """The first workers to finish, covering at least `min_envs` envs (default: all that
        were sent): (obs, rewards, terminated, truncated, infos, env_ids). When none answers
        within `timeout`, the silent ones are received with the env's own timeout and a hung
        one is reported (and killed) as by `step`, so after at most twice the timeout."""
        if not self._pending:
            raise EnvError(f"{self.env_id}: `recv` without a pending `send`")
        timeout = self.timeout if timeout is None else timeout
        sizes = {i: self._slices[i + 1] - self._slices[i] for i in self._pending}
        want = min(min_envs or sum(sizes.values()), sum(sizes.values()))
        ready = _first_ready(
            {i: self._workers[i].steps for i in self._pending}, sizes, want, timeout
        )
        for i in ready:
            self._pending.remove(i)
        replies = self._gather(self._recv, [self._workers[i] for i in ready])
        ids = np.concatenate([np.arange(self._slices[i], self._slices[i + 1]) for i in ready])
        return (*self._assemble(ready, replies), ids)

    def _drain_pending(self) -> None:
        """Take and drop the replies of async sends not yet received (a reset starts over)."""
        for i in self._pending:
            try:
                self._recv(self._workers[i].steps)  # type: ignore[arg-type]
            except WorkerError:
                pass  # a dead or hung worker is restarted by the reset
        self._pending = []

    def _assemble(self, workers: list[int], replies: list[StepResult]):
        if len(replies) == 1:  # one worker: its arrays are the batch
            arrays = replies[0][:4]  # obs, rewards, terminated, truncated
        else:
            arrays = tuple(_concat(list(parts)) for parts in zip(*(r[:4] for r in replies)))
        has_infos = [r.infos is not None for r in replies]
        has_finals = [r.finals is not None for r in replies]
        if not any(has_infos) and not any(has_finals):  # the common step of a light env
            return (*arrays, {})
        sizes = [len(self._workers[i].handles) for i in workers]
        infos: dict[str, Any] = {}
        if any(has_infos):
            infos = self._merge_infos(
                [i for r, k in zip(replies, sizes) for i in (r.infos or [{}] * k)]
            )
        if any(has_finals):
            finals = [f for r, k in zip(replies, sizes) for f in (r.finals or [None] * k)]
            infos.update(_final_infos(finals))
        return (*arrays, infos)

    @staticmethod
    def _merge_infos(infos: list[dict]) -> dict:
        """Per-env info dicts -> Gymnasium's vector form: per key an object array of the
        values (None where an env has none) and a `_key` mask."""
        out: dict[str, Any] = {}
        for i, info in enumerate(infos):
            for k, v in info.items():
                if k not in out:
                    out[k] = np.empty(len(infos), dtype=object)
                    out["_" + k] = np.zeros(len(infos), dtype=bool)
                out[k][i] = v
                out["_" + k][i] = True
        return out

    def close(self, **kwargs: Any) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for w in getattr(self, "_workers", []):
            w.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _final_infos(finals: list[Final | None]) -> dict[str, np.ndarray]:
    """Gymnasium's SAME_STEP keys from per-env finals (or None): the final
    observation and info of each env whose episode ended in the step, with their masks."""
    n = len(finals)
    mask = np.zeros(n, dtype=bool)
    final_obs = np.empty(n, dtype=object)
    final_info = np.empty(n, dtype=object)
    for i, f in enumerate(finals):
        if f is None:
            final_info[i] = {}
        else:
            mask[i] = True
            final_obs[i], final_info[i] = f.obs, f.info
    return {
        "final_obs": final_obs,
        "_final_obs": mask,
        "final_info": final_info,
        "_final_info": mask,
    }


def _first_ready(
    handles: dict[int, Steps | None], sizes: dict[int, int], want: int, timeout: float
) -> list[int]:
    """Indices of workers whose replies are ready, in the order they became ready, until they
    cover `want` envs; a worker silent past `timeout` is returned too (its recv reports it)."""
    ready: list[int] = []
    deadline = time.monotonic() + timeout
    while sum(sizes[i] for i in ready) < want:
        waiting: dict[int, int] = {}
        for i, c in handles.items():
            if i in ready:
                continue
            fd = c.wait_fd() if c is not None else None
            if fd is None:
                ready.append(i)
            else:
                waiting[fd] = i
        if not waiting or sum(sizes[i] for i in ready) >= want:
            continue
        remaining = deadline - time.monotonic()
        fds = select.select(list(waiting), [], [], max(0.0, remaining))[0] if remaining > 0 else []
        if not fds:  # hung: hand the slowest over to recv, which times out and reports it
            ready.extend(i for i in waiting.values() if i not in ready)
            break
        ready.extend(waiting[fd] for fd in fds)
    return ready
