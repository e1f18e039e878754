"""Discover's recorded checks: every listed env checked by `ldm envs check`'s own check
(`ldm.envs.library.check.check_spec`) on the spec discovery writes, with the wrappers it declares, so
that the `check` column `ldm envs list` shows is what `ldm envs check` finds.

An env whose check fails only on seeding (a library drawing from the global `random` /
`np.random`: observations, rewards or infos that differ between two runs from one seed) is
checked again with the declared `seed_global_rngs` wrapper; the wrapper is kept when it makes
one of them pass its seed checks, and then every env is checked with it (the record is the
written spec's).

Imports ldm's hub modules; never an environment library (those live in the library's venv).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.check import check_spec
from ldm.envs.library.discover.trials import OnResult
from ldm.envs.library.trial import EnvTrial

#: `ldm envs check`'s problems that say one seed did not give one episode (its own rollout
#: comparisons and Gymnasium's check_env determinism checks).
SEED_PROBLEM = re.compile(r"seed|[Dd]eterministic")

SEEDING_WRAPPER = "seed_global_rngs"


def check_all(
    spec: LibrarySpec,
    passed: dict[str, EnvTrial],
    timeout: float,
    workers: int,
    on_result: OnResult | None = None,
) -> dict[str, EnvTrial]:
    """The listed envs with `ldm envs check`'s problems on `spec`, `workers` at a time, each
    in its own worker as `ldm envs check` runs it; `on_result` hears each as it comes."""

    def one(rid: str) -> tuple[str, EnvTrial]:
        problems = check_spec(spec, rid, timeout=timeout).problems
        return rid, replace(passed[rid], problems=problems)

    out = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for rid, trial in pool.map(one, sorted(passed)):
            out[rid] = trial
            if on_result is not None:
                on_result(spec, rid, trial)
    return out


def _seed_failures(trial: EnvTrial) -> bool:
    return any(SEED_PROBLEM.search(p) for p in trial.problems or [])


def checked(
    spec: LibrarySpec,
    passed: dict[str, EnvTrial],
    timeout: float,
    workers: int,
    on_result: OnResult | None = None,
) -> tuple[LibrarySpec, dict[str, EnvTrial]]:
    """(the spec to write, its listed envs with their recorded checks): every env checked on
    `spec`; with `seed_global_rngs` added (and every env checked again with it) when that
    makes an env whose seed checks failed pass them."""
    result = check_all(spec, passed, timeout, workers, on_result)
    flaky = {rid: t for rid, t in result.items() if _seed_failures(t)}
    if not flaky or SEEDING_WRAPPER in spec.wrappers:
        return spec, result
    seeded = replace(spec, wrappers=[*spec.wrappers, SEEDING_WRAPPER])
    again = check_all(seeded, flaky, timeout, workers)
    if all(_seed_failures(t) for t in again.values()):
        return spec, result
    for rid, t in again.items() if on_result is not None else ():
        on_result(seeded, rid, t)
    rest = {rid: t for rid, t in passed.items() if rid not in flaky}
    return seeded, {**again, **check_all(seeded, rest, timeout, workers, on_result)}
