"""WindowLoader: the sampler's batches as torch tensors for training, made in DataLoader
worker processes; resumable exactly (its state is the next batch index and the runs dropped
so far). See ldm/data/sampler.py for how windows are drawn.

Imports numpy, ldm.data.sampler/store, ldm.errors and ldm.tokens; torch only inside
iteration; never ldm.model or an environment library.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ldm import errors
from ldm.data.sampler import Holdout, OnBadRun, Targets, Weighting, WindowSampler
from ldm.data.store import Store
from ldm.errors import LDMError, StoreError
from ldm.tokens import Batch


class LoaderError(NamedTuple):
    """What a loader worker yields instead of a batch it could not make (an ldm error)."""

    kind: str  # the LDMError subclass, by name in ldm.errors
    args: tuple  # its constructor's arguments (`__reduce__`'s, else the message)


class LoaderDrop(NamedTuple):
    """What a loader worker yields before a batch when it dropped a damaged run."""

    run_id: str
    why: str


class WindowLoader:
    """Iterable of torch batches for training (see module docstring); resumable exactly."""

    def __init__(
        self,
        store: Store | str,
        window_len: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        weighting: Weighting = "uniform",
        curated_only: bool = True,
        num_workers: int = 1,
        envs: list[str] | None = None,
        runs: list[str] | None = None,
        targets: Targets = "reference",
        holdout: Holdout = "none",
        on_bad_run: OnBadRun = "stop",
        exclude: list[str] | None = None,
        episodes: int | None = None,
    ) -> None:
        self.sampler = WindowSampler(
            store,
            window_len,
            weighting,
            curated_only,
            envs,
            runs,
            targets,
            holdout=holdout,
            on_bad_run=on_bad_run,
            exclude=exclude,
            episodes=episodes,
        )
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.num_workers = num_workers
        self.next_index = 0
        self._it: Any = None

    @property
    def env_ids(self) -> list[str]:
        return self.sampler.env_ids

    @property
    def dropped(self) -> dict[str, str]:
        """Damaged runs dropped so far (run id -> why), by every worker of this loader."""
        return self.sampler.dropped

    def state_dict(self) -> dict[str, Any]:
        return {
            "next_index": self.next_index,
            "seed": self.seed,
            "rank": self.rank,
            "dropped": dict(self.dropped),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_index = int(state["next_index"])
        for run_id, why in state.get("dropped", {}).items():  # dropped before the resume
            self.sampler.drop(run_id, why)
        self._it = None

    def _torch_iter(self) -> Any:
        import torch
        from torch.utils.data import DataLoader, IterableDataset

        sampler, bs, seed, rank, start = (
            self.sampler,
            self.batch_size,
            self.seed,
            self.rank,
            self.next_index,
        )
        n_workers = self.num_workers

        class _Batches(IterableDataset):
            def __iter__(self):
                info = torch.utils.data.get_worker_info()
                wid, nw = (info.id, info.num_workers) if info else (0, 1)
                i = start + wid
                told = set(sampler.dropped)
                while True:
                    try:
                        b = sampler.batch(bs, seed, rank, i)
                    except LDMError as e:  # crosses to the main process as data (see __next__)
                        reduced = e.__reduce__()
                        args = reduced[1] if reduced[0] is type(e) else (str(e),)
                        yield LoaderError(type(e).__name__, tuple(args))
                        return
                    for run_id in sorted(set(sampler.dropped) - told):  # before the batch
                        told.add(run_id)
                        yield LoaderDrop(run_id, sampler.dropped[run_id])
                    yield b.map(lambda v: torch.from_numpy(np.ascontiguousarray(v)))
                    i += nw

        return iter(
            DataLoader(
                _Batches(),
                batch_size=None,
                num_workers=n_workers,
                persistent_workers=False,
                prefetch_factor=4 if n_workers > 0 else None,
            )
        )

    def __iter__(self) -> WindowLoader:
        return self

    def __next__(self) -> Batch:
        if self._it is None:
            self._it = self._torch_iter()
        batch = next(self._it)
        while isinstance(batch, LoaderDrop):  # the main process's sampler drops it too
            if batch.run_id not in self.sampler.dropped:
                self.sampler.drop(batch.run_id, batch.why)
            batch = next(self._it)
        if isinstance(batch, LoaderError):
            # raised here with the worker's own message: torch would re-raise it wrapped in the
            # worker's traceback ("Caught StoreError in DataLoader worker process 0 ...")
            self._it = None
            raise getattr(errors, batch.kind, StoreError)(*batch.args)
        self.next_index += 1
        return batch
