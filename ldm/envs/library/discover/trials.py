"""Discover's env trials: every candidate id tried in parallel workers, and the failures the
hub fixes itself (a missing optional dependency installed, a declared wrapper added) tried
again.

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable
from dataclasses import replace

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.discover.modules import IMPORT_TIMEOUT
from ldm.envs.library.discover.requirements import MAX_ADDED_DEPENDENCIES, missing_requirements
from ldm.envs.library.trial import EnvTrial, try_env
from ldm.envs.library.venvs import ensure_venv
from ldm.envs.transport.backends import Connection, connect
from ldm.errors import LDMError

#: Failures the hub fixes itself with a declared wrapper: (reason pattern, wrapper). Discovery
#: adds the wrapper to the spec and tries the envs that failed that way again. A reason keeps
#: its first line only: a space whose repr spans lines (a Dict of 2-D Boxes) is known by its
#: opening (`observation space Dict(`).
AUTO_WRAPPERS = (
    (
        re.compile(r"^observation space (.*\((Dict|Tuple)\) is not supported|(Dict|Tuple)\()"),
        "flatten_dict",
    ),
    (
        re.compile(
            r"failed on 'step': TypeError: (only (0-dimensional|length-1) arrays"
            r"|float\(\) argument must be a [a-z ]*number, not '(list|dict)')"
        ),
        "sum_reward",
    ),
    (
        re.compile(r"^action space (.*\((Tuple|Dict)\) is not supported|(Tuple|Dict)\()"),
        "joint_action",
    ),
    # one agent's action given to a team that takes one per agent (the wrapper checks the
    # env's agent count: it changes nothing for an env that has none)
    (
        re.compile(
            r"failed on 'step': TypeError: (object of type '(int|float|numpy\.\w+)' has no len"
            r"|'(int|float|numpy\.\w+)' object is not (subscriptable|iterable))"
        ),
        "team_actions",
    ),
)

Outcome = tuple[LibrarySpec, dict[str, EnvTrial], dict[str, str]]


#: Called with each env's outcome as it comes (a trial, or the reason it failed).
OnResult = Callable[[LibrarySpec, str, "EnvTrial | str"], None]


def try_all(
    spec: LibrarySpec,
    ids: list[str],
    timeout: float,
    workers: int,
    steps: int,
    progress: bool,
    on_result: OnResult | None = None,
) -> tuple[dict[str, EnvTrial], dict[str, str]]:
    """Try every id in `workers` parallel workers (a crashed worker is replaced), each within
    `timeout` seconds; `on_result` hears each outcome as it comes (the partial spec)."""
    from tqdm import tqdm

    todo: queue.Queue[str] = queue.Queue()
    for rid in ids:
        todo.put(rid)
    passed: dict[str, EnvTrial] = {}
    failed: dict[str, str] = {}
    lock = threading.Lock()
    bar = tqdm(total=len(ids), desc=f"discover {spec.name}", disable=not progress)

    def work(k: int) -> None:
        conn: Connection | None = None
        while True:
            try:
                rid = todo.get_nowait()
            except queue.Empty:
                break
            try:
                if conn is None or not conn.alive:
                    label = f"{spec.name}[discover {k}]"
                    conn = connect("process", spec, label, init_timeout=IMPORT_TIMEOUT)
                result: EnvTrial | str = try_env(conn, spec, rid, timeout, steps)
            except LDMError as e:  # without the worker's label: reasons stay stable across runs
                result = re.sub(r"^\S+\[discover \d+\]: ", "", str(e).splitlines()[0])[:400]
            except Exception as e:  # a library bug is a finding about that env
                result = f"{type(e).__name__}: {e}"[:400]
            with lock:
                if isinstance(result, EnvTrial):
                    passed[rid] = result
                else:
                    failed[rid] = result
                bar.update()
                if on_result is not None:
                    on_result(spec, rid, result)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    return passed, failed


def retry_with_dependencies(
    spec: LibrarySpec,
    passed: dict[str, EnvTrial],
    failed: dict[str, str],
    timeout: float,
    workers: int,
    steps: int,
) -> Outcome:
    """Install the optional dependencies that failures name and try those envs again."""
    wanted: dict[str, list[str]] = {}
    for rid, why in failed.items():
        for req in missing_requirements(why, spec):
            wanted.setdefault(req, []).append(rid)
    if not wanted:
        return spec, passed, failed
    extra = sorted(wanted, key=lambda r: -len(wanted[r]))[:MAX_ADDED_DEPENDENCIES]
    bigger = replace(spec, requirements=[*spec.requirements, *extra])
    try:
        ensure_venv(bigger)
    except LDMError:
        return spec, passed, failed  # the dependency does not install: the reasons stand
    retry = sorted({rid for r in extra for rid in wanted[r]})
    again, still = try_all(bigger, retry, timeout, workers, steps, progress=False)
    if not again:
        return spec, passed, failed
    return (
        bigger,
        {**passed, **again},
        {**{k: v for k, v in failed.items() if k not in retry}, **still},
    )


def retry_with_wrappers(
    spec: LibrarySpec,
    passed: dict[str, EnvTrial],
    failed: dict[str, str],
    timeout: float,
    workers: int,
    steps: int,
) -> Outcome:
    """Add the declared wrappers that fix failures (`AUTO_WRAPPERS`) and retry those envs;
    again while a retry shows a failure another wrapper fixes (a Tuple observation hides the
    Tuple action behind it)."""
    for _ in AUTO_WRAPPERS:
        add = [
            w
            for pattern, w in AUTO_WRAPPERS
            if w not in spec.wrappers and any(pattern.search(why) for why in failed.values())
        ]
        if not add:
            break
        spec = replace(spec, wrappers=[*spec.wrappers, *add])
        again, failed = try_all(spec, sorted(failed), timeout, workers, steps, progress=False)
        passed = {**passed, **again}
    return spec, passed, failed
