"""Shared helpers of the benchmarks: argument parsing and the one-JSON-line report."""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable


def args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """`--quick`, and the options `extra` adds (a benchmark that reads existing files)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short run (< 60 s)")
    if extra is not None:
        extra(p)
    return p.parse_args()


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Units per second of `fn` (which returns units done) over about `seconds`."""
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += fn()
    return done / (time.perf_counter() - t0)


def report(result: dict) -> None:
    result = {
        **result,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result))


def run_quality(store: str, run_id: str) -> dict:
    """A recorded reference run's last-tenth mean return, curation's p (last tenth > first)
    and its deterministic play's mean return (None without a check)."""
    from ldm.data import Store
    from ldm.data.anchors import split_tenths
    from ldm.refgen.curate import welch_greater

    meta = Store(store).open_run(run_id).meta
    first, last = split_tenths(meta.episode_returns)
    checks = meta.extra.get("check_returns", [])
    return {
        "last10": round(float(last.mean()), 2),
        "p": welch_greater(last, first).p,
        "check": round(sum(checks) / len(checks), 2) if checks else None,
    }


def heldout_sampler(model, store, env: str):  # noqa: ANN001, ANN201 (torch-free import)
    """The held-out (last-stream) window sampler of one env at the model's context, or None
    when its runs have a single stream and so nothing held out."""
    from ldm.data import WindowSampler
    from ldm.errors import StoreError

    try:
        return WindowSampler(store, model.config.context, holdout="val", envs=[env])
    except StoreError:
        return None


def heldout_batches(val, windows: int, batch: int, seed: int):  # noqa: ANN001, ANN201
    """`windows` held-out windows of `val` in batches of at most `batch` (the same ones for
    the same seed)."""
    for i in range(-(-windows // batch)):
        yield val.batch(min(batch, windows - i * batch), seed, 0, i).to()
