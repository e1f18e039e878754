"""The references' evaluation in a helper process, beside the LDM's.

The evaluation stage plays the LDM and the reference policies by the same protocol. Neither
needs the other, and each keeps about one core busy (batched model calls over a few slots, the
env workers light), so the references play in one spawned process with one torch thread while
the LDM's evaluation keeps the other cores' threads: the stage takes about the longer of the
two instead of their sum (the quickstart on 2 cores: 136 s against 133 + 50 s one after the
other). The threads are split, never doubled: two processes of 2 torch threads on 2 cores spin
against each other and took 323 s for the same work (docs/benchmarks.md, "Evaluation").

The helper dies with the `ldm` process (`die_with_parent`), its env workers with it; its
results.json is written atomically, so a killed stage leaves either the references' whole
results (kept by the rerun) or none.

Owns: `Helper` (a function in a helper process), `evaluate_references`, `torch_threads`.
Imports ldm.envs.lifetime, ldm.eval and torch (the last two lazily); imported only by
ldm.pipeline.run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ldm.envs.lifetime import die_with_parent
from ldm.errors import EvalError

if TYPE_CHECKING:
    from ldm.eval.results import EvalResult


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside the block, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def finished_references(ref_dir: Path, store: str) -> EvalResult | None:
    """The references' results an earlier attempt of the stage wrote for this store, or None."""
    from ldm.eval.results import EvalResult

    path = ref_dir / "results.json"
    if not path.exists():
        return None
    results = EvalResult.load(path)
    return results if results.policy == "references" and results.store == store else None


class Helper:
    """`with Helper(fn, *args) as h:` runs `fn(*args)` (a module-level function) in a spawned
    helper process that dies with this one; `h.result()` waits for its return value and raises
    what it raised. Leaving the block before it finished (an error or an interrupt in the work
    beside it) stops the helper; none is left behind either way."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __enter__(self) -> Helper:
        import multiprocessing as mp

        self.pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=mp.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        self.future = self.pool.submit(self.fn, *self.args)
        return self

    def result(self) -> Any:
        try:
            return self.future.result()
        except BrokenProcessPool as e:
            raise EvalError(
                f"the helper process running {self.fn.__name__} died ({e}); rerun the same "
                "command: finished results are kept"
            ) from None

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None or not self.future.done():
            for proc in list((self.pool._processes or {}).values()):
                proc.terminate()  # its env workers die with it
        self.pool.shutdown(wait=True, cancel_futures=True)


def evaluate_references(
    env_ids: list[str] | None, store: str, cfg: Any, ref_dir: str, title: str
) -> None:
    """The helper's work: the store's references by the protocol (one torch thread), their
    report in `ref_dir`."""
    from ldm.eval import evaluate, write_report

    with torch_threads(1):
        refs = evaluate(
            None, env_ids, store, cfg, progress=False, video_dir=Path(ref_dir) / "clips"
        )
    write_report(refs, ref_dir, title=title)
