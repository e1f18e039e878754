"""The first K reference episodes of an env: which prefix of which stream holds them.

Fine-tuning on K episodes and the retrieval baseline over K episodes read the same data: for
each env, its curated runs in run-id order, and in each run its finished episodes in the order
they ended (by end index, then stream: the streams of a run step together). The first K of that
order are kept. In a stream the kept episodes are always its first ones, so they are exactly the
stream's prefix up to the last kept episode's end: `EpisodeCut` records that prefix.

Owns: choosing the K episodes (`first_episodes`) and the streams training reads. Imports ldm.data.meta and ldm.errors only
(the caller passes the run metadata); never torch, the sampler or an environment library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ldm.data.meta import RunMeta
from ldm.errors import StoreError


def training_streams(num_streams: int) -> range:
    """The streams of a run that training reads: all but the last of a multi-stream run (its
    own seed, held out for validation: the sampler's holdout="train")."""
    return range(num_streams - 1 if num_streams >= 2 else num_streams)


@dataclass(frozen=True)
class EpisodeCut:
    """The kept prefix of one stream: transitions [0, stop) of `stream` of run `run_id`."""

    run_id: str
    stream: int
    stop: int
    episodes: int
    """Finished episodes in the prefix."""


def first_episodes(
    env_id: str, runs: Iterable[tuple[str, RunMeta, Iterable[int]]], k: int
) -> tuple[EpisodeCut, ...]:
    """The stream prefixes holding the first `k` finished episodes of `env_id`.

    `runs`: (run id, its metadata, the streams that may be used) of the env's runs, in the
    order they are taken (run id order). Raises a StoreError naming the env when its runs hold
    fewer than `k` finished episodes."""
    if k < 1:
        raise StoreError(f"episodes must be >= 1, got {k}")
    kept: dict[tuple[str, int], list[int]] = {}
    total = 0
    for run_id, meta, streams in runs:
        allowed = set(streams)
        order = sorted((e.end, e.stream) for e in meta.episodes if e.stream in allowed)
        for end, stream in order[: k - total]:
            kept.setdefault((run_id, stream), []).append(end)
        total += min(len(order), k - total)
        if total == k:
            break
    if total < k:
        raise StoreError(
            f"{env_id}: its curated runs hold {total} finished episodes in the streams trained "
            f"on, fewer than the {k} asked; ask for fewer episodes or record a longer run"
        )
    return tuple(
        EpisodeCut(run_id, stream, max(ends) + 1, len(ends))
        for (run_id, stream), ends in sorted(kept.items())
    )
