"""The paper's evaluation protocol, batched over environments and rollouts.

Per env: R rollouts of E episodes; the context is empty at the start of each rollout and
kept across its episodes; deterministic actions under the action mask (the most likely
category; continuous dims at the median of their predicted bins), sampling as an option;
fresh recorded seeds per rollout. Every (env, rollout) is a *slot*; all slots of all
envs advance together, so one batched, KV-cached model call serves every live env per step.
An env whose worker dies is restarted from scratch (its slots' contexts emptied) up to
`retries` times, then reported as failed; the other envs go on.

Owns: the slots' bookkeeping (`EnvRun`) and the lockstep loop (`run_protocol`); the agents
that act for the slots are ldm/eval/agents.py's. Imports numpy, its config and agents, the
hub (lazily) and the worker's step-limit name; must not import torch, ldm.model (a policy
is duck-typed: `start_session` or `predict`), ldm.train, ldm.pipeline or the report.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ldm.envs.worker.episode_wrappers import STEP_LIMIT_KWARG
from ldm.errors import LDMError
from ldm.eval.agents import Agent
from ldm.eval.config import EvalConfig
from ldm.spaces import SpaceSpec


class ProtocolStats(NamedTuple):
    """What one run of the protocol cost: batched model calls and protocol steps."""

    model_calls: int
    steps: int


@dataclass
class EnvRun:
    """The slots of one env: a vector env of R sub-envs and their episode bookkeeping."""

    env_id: str
    obs_spec: SpaceSpec
    act_spec: SpaceSpec
    seeds: list[int]
    slots: list[int] = field(default_factory=list)
    venv: Any = None
    returns: list[list[float]] = field(default_factory=list)
    running: np.ndarray | None = None
    steps: int = 0
    failures: int = 0
    error: str | None = None
    cut: bool = False
    step_limit: int | None = None
    """Steps after which the protocol cuts an episode (None: the env's own limits only)."""
    cut_episodes: int = 0
    """Episodes the protocol cut at `step_limit` (counted with their return so far)."""
    episode_steps: np.ndarray | None = None
    render_mode: str | None = None
    """Made with this render_mode (`rgb_array` when an EpisodeRecorder records its clip)."""
    render_note: str | None = None
    """Why the env could not be made with `render_mode` (it then runs without frames)."""

    def done(self, episodes: int) -> bool:
        return self.error is not None or self.cut or all(len(r) >= episodes for r in self.returns)


def blank_observation(spec: SpaceSpec) -> np.ndarray:
    """A zero observation of a space (stands in for an env that could not start)."""
    return np.zeros(spec.value_shape, dtype=np.uint8 if spec.kind == "image" else np.float32)


def rollout_seeds(env_id: str, cfg: EvalConfig) -> list[int]:
    base = zlib.crc32(env_id.encode()) % 100_000
    return [cfg.seed + base * 10 + r for r in range(cfg.rollouts)]


def _open(run: EnvRun, cfg: EvalConfig) -> np.ndarray:
    from ldm.envs import make_vec

    if run.venv is not None:
        run.venv.close()
        run.venv = None
    limit = {STEP_LIMIT_KWARG: run.step_limit} if run.step_limit else {}
    render = {"render_mode": run.render_mode} if run.render_mode else {}
    try:
        run.venv = make_vec(
            run.env_id, cfg.rollouts, backend=cfg.backend, workers=1, **limit, **render
        )
    except LDMError as e:
        if not render:
            raise
        # a clip must never cost the evaluation: go on without frames, keeping the reason
        run.render_mode = None
        run.render_note = f"cannot be made with render_mode: {str(e).splitlines()[0]}"
        run.venv = make_vec(run.env_id, cfg.rollouts, backend=cfg.backend, workers=1, **limit)
    run.returns = [[] for _ in range(cfg.rollouts)]
    run.running = np.zeros(cfg.rollouts)
    run.episode_steps = np.zeros(cfg.rollouts, dtype=np.int64)
    run.steps = 0
    obs, _ = run.venv.reset(seed=run.seeds)
    return obs


def _start(run: EnvRun, cfg: EvalConfig, obs: list[Any], failure: str) -> bool:
    """(Re)open an env's vector env and put its first observations in `obs`; on failure the env
    is marked failed (`failure: error`), its slots get blank observations and False returns."""
    try:
        o = _open(run, cfg)
    except LDMError as e:
        run.error = f"{failure}: {e}"
        if run.venv is not None:
            run.venv.close()
            run.venv = None
        for s in run.slots:
            obs[s] = blank_observation(run.obs_spec)
        return False
    for j, s in enumerate(run.slots):
        obs[s] = o[j]
    return True


def run_protocol(
    runs: list[EnvRun],
    agent: Agent,
    cfg: EvalConfig,
    progress: bool = True,
    recorder: Any = None,
) -> ProtocolStats:
    """Advance every slot of every env together until each env has E episodes per rollout.
    A `recorder` (ldm/eval/video.py) is told when an env starts and when its sub-env 0 steps."""
    from tqdm import tqdm

    n_slots = sum(len(r.slots) for r in runs)
    obs: list[Any] = [None] * n_slots
    for run in runs:
        if _start(run, cfg, obs, "could not start") and recorder:
            recorder.started(run)
    bar = tqdm(
        total=len(runs) * cfg.rollouts * cfg.episodes, desc="eval episodes", disable=not progress
    )
    steps = 0
    while not all(r.done(cfg.episodes) for r in runs):
        live = [r for r in runs if not r.done(cfg.episodes)]
        live_slots = np.zeros(n_slots, bool)
        live_slots[[s for r in live for s in r.slots]] = True
        actions = agent.act(obs, live_slots)  # finished slots' actions are not used
        steps += 1
        step = _SlotStep(np.zeros(n_slots), np.zeros(n_slots, bool), np.zeros(n_slots, bool))
        restarted: list[int] = []
        for run, outcome in zip(live, _step_all(live, actions)):
            if isinstance(outcome, LDMError):
                if _recover(run, outcome, cfg, obs):
                    restarted += run.slots
                    if recorder:
                        recorder.started(run)
                continue
            _record(run, outcome, cfg, obs, step, bar)
            if recorder:
                recorder.stepped(run, bool(outcome[2][0] or outcome[3][0]), outcome, actions)
            if run.steps >= cfg.max_steps:
                run.cut = True
        agent.record(step.rewards, step.terminated, step.truncated)
        if restarted:
            agent.reset(restarted)
    bar.close()
    for run in runs:
        if run.venv is not None:
            run.venv.close()
    return ProtocolStats(getattr(agent, "calls", steps), steps)


class _SlotStep(NamedTuple):
    """One protocol step's outcome per slot (what the agent records)."""

    rewards: np.ndarray  # (n_slots,)
    terminated: np.ndarray  # (n_slots,) bool
    truncated: np.ndarray  # (n_slots,) bool


def _step_all(live: list[EnvRun], actions: list[Any]) -> list[Any]:
    """Send every live env its actions first, then collect, so the envs step in parallel.
    Per env: its step result (obs, rewards, terminated, truncated, infos) or the error."""
    outcomes: list[Any] = []
    for run in live:
        try:
            run.venv.step_send(np.stack([np.asarray(actions[s]) for s in run.slots]))
            outcomes.append(None)
        except LDMError as e:
            outcomes.append(e)
    for k, run in enumerate(live):
        if outcomes[k] is None:
            try:
                outcomes[k] = run.venv.step_recv()
            except LDMError as e:
                outcomes[k] = e
    return outcomes


def _recover(run: EnvRun, error: LDMError, cfg: EvalConfig, obs: list[Any]) -> bool:
    """After a failed step: restart the env from scratch (new rollouts, empty contexts; True)
    or, past `cfg.retries`, mark it failed. A failed restart fails this env only."""
    run.failures += 1
    first_line = str(error).splitlines()[0]
    if run.failures > cfg.retries:
        run.error = f"failed after {run.failures} attempts: {first_line}"
        return False
    return _start(run, cfg, obs, f"could not restart after: {first_line}")


def _record(
    run: EnvRun, outcome: Any, cfg: EvalConfig, obs: list[Any], step: _SlotStep, bar: Any
) -> None:
    """Book one step of an env's slots: observations, returns of finished episodes (and
    whether the protocol's step limit cut them), the slots' rewards and flags."""
    o, r, te, tr, _ = outcome
    run.steps += 1
    run.running += r
    run.episode_steps += 1
    for j, s in enumerate(run.slots):
        obs[s] = o[j]
        step.rewards[s], step.terminated[s], step.truncated[s] = r[j], te[j], tr[j]
        if not (te[j] or tr[j]):
            continue
        if len(run.returns[j]) < cfg.episodes:
            run.returns[j].append(float(run.running[j]))
            cut = run.step_limit and not te[j] and run.episode_steps[j] >= run.step_limit
            run.cut_episodes += bool(cut)
            bar.update()
        run.running[j] = 0.0
        run.episode_steps[j] = 0
