"""The SB3 callbacks that end a reference run, and the record of why each ended.

- `budget_callback(job, returns)`: a fixed budget, gone on past until `min_episodes` episodes
  have finished (up to the job's limit);
- `auto_callback(rule, returns)`: the AutoRL rule of ldm/refgen/autobudget.py, looked at every
  `check_every` transitions.

Both keep the run's episode returns list (the recorder's, read live) and answer `stop_record`
once `learn` returns: every run says why it stopped.

Owns the callbacks. Imports stable_baselines3's BaseCallback (inside the factories: the job
imports SB3 anyway) and refgen's autobudget; must not import ldm.envs, ldm.data or later parts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ldm.refgen.autobudget import AutoBudget, StopRecord, decide

if TYPE_CHECKING:
    from ldm.refgen.jobs import Job


def _mean_length(episodes: int, transitions: int) -> float | None:
    """Transitions per finished episode (unfinished episodes' steps count too: a rough mean)."""
    return round(transitions / episodes, 1) if episodes else None


def budget_callback(job: Job, returns: list[float]) -> Any:
    """Stop at max(budget, the transitions of the first `min_episodes` episodes), within the
    job's limit; `stop_record` says which of the three ended it."""
    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeBudget(BaseCallback):
        def _on_training_start(self) -> None:
            self.t0 = time.time()

        def _on_step(self) -> bool:
            if self.num_timesteps < job.budget:
                return True
            return len(returns) < job.min_episodes

        def stop_record(self) -> StopRecord:
            n = self.num_timesteps
            reason = (
                "budget"
                if n < job.budget + self.training_env.num_envs
                else "budget: limit"
                if n >= job.limit
                else "budget: episodes"
            )
            seconds = time.time() - self.t0
            return StopRecord(reason, n, round(seconds, 2), len(returns),
                              round(n / max(seconds, 1e-9), 1),
                              _mean_length(len(returns), n))  # fmt: skip

    return EpisodeBudget()


def auto_callback(rule: AutoBudget, returns: list[float]) -> Any:
    """Look at the curve every `check_every` transitions and stop by `decide`; at the cap in
    transitions SB3's own `total_timesteps` ends the run."""
    from stable_baselines3.common.callbacks import BaseCallback

    class LearningStop(BaseCallback):
        def _on_training_start(self) -> None:
            self.t0 = time.time()
            self.next_look = rule.check_every
            self.flat_since: int | None = None  # first look of the current flat streak
            self.reason: str | None = None
            self.seen: Any = None
            self.ends: list[int] = []  # the transitions at which each episode ended

        def _on_step(self) -> bool:
            n = self.num_timesteps
            self.ends += [n] * (len(returns) - len(self.ends))
            if n < self.next_look and n < rule.max_transitions:
                return True
            self.next_look = n + rule.check_every
            reason, seen = decide(rule, returns, self.ends, n, time.time() - self.t0,
                                  self.flat_since)  # fmt: skip
            if seen is not None:
                self.seen = seen
                self.flat_since = (self.flat_since or n) if seen.flat else None
            self.reason = reason
            return reason is None

        def stop_record(self) -> StopRecord:
            n = self.num_timesteps
            seconds = time.time() - self.t0
            seen = self.seen
            return StopRecord(
                self.reason or "cap: transitions",
                n,
                round(seconds, 2),
                len(returns),
                round(n / max(seconds, 1e-9), 1),
                _mean_length(len(returns), n),
                None if seen is None or seen.p_improved is None else float(np.round(seen.p_improved, 6)),
                None if seen is None or seen.gain_bound is None else round(seen.gain_bound, 4),
            )  # fmt: skip

    return LearningStop()
