"""The references' evaluation in a helper process, beside the LDM's.

The evaluation stage plays the LDM and the reference policies by the same protocol. Neither
needs the other, and each keeps about one core busy (batched model calls over a few slots, the
env workers light), so the references play in one spawned process with one torch thread while
the LDM's evaluation keeps the other cores' threads: the stage takes about the longer of the
two instead of their sum (the quickstart on 2 cores: 136 s against 133 + 50 s one after the
other). The threads are split, never doubled: two processes of 2 torch threads on 2 cores spin
against each other and took 323 s for the same work (docs/benchmarks.md, "Evaluation").

The helper dies with the `ldm` process (`spawn_pool`), its env workers with it; its report
is written with results.json last and atomically, so a killed stage leaves either the
references' whole results (kept by the rerun) or none.

Owns: `Helper` (a function in a helper process), `evaluate_references`, `torch_threads`,
`cores`.
Imports ldm.envs.transport.lifetime, ldm.eval and torch (the last two lazily); imported only by
ldm.pipeline.run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ldm.envs.transport.lifetime import spawn_pool, stop_pool
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


class Helper:
    """`with Helper(fn, *args) as h:` runs `fn(*args)` (a module-level function) in a spawned
    helper process that dies with this one; `h.result()` waits for its return value and raises
    what it raised. Leaving the block before it finished (an error or an interrupt in the work
    beside it) stops the helper; none is left behind either way."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __enter__(self) -> Helper:
        self.pool = spawn_pool(1)
        self.future = self.pool.submit(self.fn, *self.args)
        return self

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> Any:
        try:
            return self.future.result()
        except BrokenProcessPool as e:
            raise EvalError(
                f"the helper process running {self.fn.__name__} died ({e}); rerun the same "
                "command: finished results are kept"
            ) from None

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        stop_pool(self.pool, abort=exc_type is not None or not self.done())


def evaluate_references(
    env_ids: list[str] | None, store: str, cfg: Any, ref_dir: str, title: str
) -> EvalResult:
    """The helper's work: the store's references by the protocol (one torch thread), their
    report in `ref_dir`; the results go back to the stage."""
    from ldm.eval import evaluate, write_report

    with torch_threads(1):
        refs = evaluate(
            None, env_ids, store, cfg, progress=False, video_dir=Path(ref_dir) / "clips"
        )
    write_report(refs, ref_dir, title=title)
    return refs
