"""The 1-nearest-neighbour retrieval baseline: act as the reference did at the closest stored
observation of an env's first K reference episodes.

REGENT found this plain baseline strong on unseen envs; it is the data-efficiency curve's third
learner beside the fine-tuned LDM and the same model trained from scratch, on the same data:
the first K episodes of the env's curated runs in the streams training reads (ldm.data.episodes;
a multi-stream run's last stream is held out, as for the training sampler). The distance is
Euclidean over the flattened observation (as float32); ties go to the earliest transition.
A `NearestNeighbourPolicy` has SB3's `predict`, so the protocol drives it like the references
(`evaluate(None, ..., per_env=lambda e: retrieval_policy(store, e, k))`).

Owns the baseline. Imports numpy and ldm.data; must not import torch, ldm.model or ldm.train.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldm.data import Store
from ldm.data.episodes import first_episodes, training_streams
from ldm.errors import EvalError

CHUNK = 4096
"""Stored observations compared at once (bounds the (queries, stored) distance matrix)."""


class NearestNeighbourPolicy:
    """observation -> the stored action of the nearest stored observation (SB3's predict)."""

    def __init__(self, observations: np.ndarray, actions: np.ndarray) -> None:
        """`observations` (N, *obs shape) and the actions taught at them (N, *act shape)."""
        if len(observations) == 0 or len(observations) != len(actions):
            raise EvalError(
                f"retrieval needs as many stored observations as actions, at least one "
                f"(got {len(observations)} and {len(actions)})"
            )
        self.obs_ndim = observations.ndim - 1
        self.obs = observations.reshape(len(observations), -1).astype(np.float32)
        self.obs_sq = (self.obs.astype(np.float64) ** 2).sum(1)
        self.actions = actions

    def nearest(self, queries: np.ndarray) -> np.ndarray:
        """Index of the nearest stored observation of each query row."""
        q = queries.reshape(len(queries), -1).astype(np.float64)
        best = np.full(len(q), np.inf)
        index = np.zeros(len(q), dtype=np.int64)
        for start in range(0, len(self.obs), CHUNK):
            x = self.obs[start : start + CHUNK].astype(np.float64)
            d = self.obs_sq[start : start + CHUNK][None, :] - 2.0 * q @ x.T  # + |q|^2: constant
            j = d.argmin(1)
            closer = d[np.arange(len(q)), j] < best
            best[closer] = d[np.arange(len(q)), j][closer]
            index[closer] = start + j[closer]
        return index

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """The actions of a batch of observations (SB3's signature; always deterministic)."""
        obs = np.asarray(observation)
        single = obs.ndim == self.obs_ndim
        batch = obs[None] if single else obs
        actions = self.actions[self.nearest(batch)]
        return (actions[0] if single else actions), state


def retrieval_policy(store: Store | str, env_id: str, episodes: int) -> NearestNeighbourPolicy:
    """The baseline over the first `episodes` reference episodes of `env_id` in `store`."""
    store = store if isinstance(store, Store) else Store(store, create=False)
    run_ids = sorted(store.runs(curated_only=True, env_id=env_id))
    if not run_ids:
        raise EvalError(f"store {store.path} has no curated run of {env_id} to retrieve from")
    readers = {rid: store.open_run(rid) for rid in run_ids}
    cuts = first_episodes(
        env_id,
        [(rid, r.meta, training_streams(r.num_streams)) for rid, r in readers.items()],
        episodes,
    )
    obs, acts = [], []
    for cut in cuts:
        reader = readers[cut.run_id]
        column = "ref_actions" if reader.has_reference_actions() else "actions"
        obs.append(reader.read(cut.stream, "obs", 0, cut.stop))
        acts.append(reader.read(cut.stream, column, 0, cut.stop))
    return NearestNeighbourPolicy(np.concatenate(obs), np.concatenate(acts))
