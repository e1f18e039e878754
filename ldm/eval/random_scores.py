"""Random scores: each env's mean return under uniform random actions, measured by ldm itself by
the protocol and cached per env and version.

The protocol: `RANDOM_CONFIG`'s rollouts x episodes of `RandomAgent` (every valid action bin
equally likely, ldm/eval/agents.py), the env's own time limit (no step limit from a
reference), reset seeds from the env id as the evaluation derives them. A measurement is cached
at `<cache>/<library>/<env>.json`, keyed by the env's version: its library spec's hash (a new
pin, a new venv), its make kwargs and declared wrappers, and the protocol itself; a changed key
measures again. Several processes measuring at once (the LDM's evaluation and the references'
beside it) take turns under a file lock, so an env is measured once.

Owns: `RandomScore`, the cache and `random_scores` (`ldm eval --random-scores`). Imports
numpy, the protocol's loop and agents, and lazily the hub's catalog and evaluate's
`prepare_runs` (evaluate imports this module lazily too); must not import torch, ldm.model,
ldm.train or the report.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ldm.atomic import write_json_atomic
from ldm.errors import EvalError, LDMError
from ldm.eval.agents import RandomAgent
from ldm.eval.config import EvalConfig
from ldm.eval.protocol import run_protocol

#: the random-score protocol: 2 rollouts x 10 episodes (the evaluation's), its own seeds, no
#: per-episode limit but the env's own, a guard of 50,000 steps per rollout
RANDOM_CONFIG = EvalConfig(
    rollouts=2, episodes=10, seed=7000, max_steps=50_000, episode_limit_factor=0.0,
    references=False, expert_scores=False,
)  # fmt: skip
#: bump when the measurement changes meaning (every cached score is then measured again)
PROTOCOL_VERSION = 1
#: where the cache lives when no `cache_dir` is given: $LDM_RANDOM_SCORES, else under LDM_HOME
CACHE_ENV = "LDM_RANDOM_SCORES"


@dataclass(frozen=True)
class RandomScore:
    """One env's returns under uniform random actions, by `RANDOM_CONFIG`'s protocol."""

    env_id: str
    mean: float | None
    """Mean return over the finished episodes; None when the env could not be measured."""
    returns: tuple[tuple[float, ...], ...] = ()
    episodes: int = 0
    version: str = ""
    """The key the cache keeps it under (library spec, make kwargs, wrappers, protocol)."""
    seconds: float = 0.0
    date: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "returns": [list(r) for r in self.returns]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RandomScore:
        return cls(**{**d, "returns": tuple(tuple(r) for r in d.get("returns") or ())})


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The random-score cache: `cache_dir`, else $LDM_RANDOM_SCORES, else LDM_HOME's
    random_scores/ (~/.cache/ldm/random_scores)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from ldm.envs.library.venvs import ldm_home

    return ldm_home() / "random_scores"


def env_version(env_id: str) -> str:
    """The version key of an env's random score: its library spec's hash, its make kwargs and
    wrappers, and the protocol (EvalError naming the env when its library is unknown)."""
    from ldm.envs.library.catalog import get_library

    library, _, registered = env_id.partition("/")
    try:
        spec = get_library(library)
    except LDMError as e:
        raise EvalError(f"{env_id}: no random score without its library's spec: {e}") from None
    key = [spec.env_hash, spec.kwargs_for(registered), spec.wrappers, PROTOCOL_VERSION,
           asdict(RANDOM_CONFIG)]  # fmt: skip
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _path(root: Path, env_id: str) -> Path:
    library, _, rest = env_id.partition("/")
    return root / library / (rest.replace("/", "__") + ".json")


def cached(env_id: str, cache_dir: str | Path | None = None) -> RandomScore | None:
    """The env's cached random score when it was measured for this version; else None."""
    path = _path(cache_root(cache_dir), env_id)
    try:
        score = RandomScore.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError):
        return None  # none yet, or unreadable: measured again and rewritten whole
    return score if score.version == env_version(env_id) else None


def random_scores(
    env_ids: Iterable[str],
    backend: str = "process",
    refresh: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, RandomScore]:
    """Every env's random score: from the cache where this version was measured (unless
    `refresh`), else measured now (all missing envs together, by the protocol) and cached. An
    env that cannot run gets a RandomScore with its `error` (not cached: tried again next
    time); the others are unaffected."""
    ids = list(dict.fromkeys(env_ids))
    root = cache_root(cache_dir)
    out: dict[str, RandomScore] = {}
    versions: dict[str, str] = {}
    for env_id in ids:
        try:
            versions[env_id] = env_version(env_id)
        except EvalError as e:
            out[env_id] = RandomScore(env_id, None, error=str(e))
    todo = [e for e in ids if e in versions]
    if not refresh:
        out.update({e: s for e in todo if (s := cached(e, root)) is not None})
        todo = [e for e in todo if e not in out]
    if not todo:
        return {e: out[e] for e in ids}
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be measuring the same envs
        if not refresh:
            out.update({e: s for e in todo if (s := cached(e, root)) is not None})
            todo = [e for e in todo if e not in out]
        for score in _measure(todo, versions, backend, progress):
            if score.error is None:
                write_json_atomic(_path(root, score.env_id), score.to_dict())
            out[score.env_id] = score
    return {e: out[e] for e in ids}


def _measure(
    env_ids: list[str], versions: dict[str, str], backend: str, progress: bool
) -> list[RandomScore]:
    """Play every env with uniform random actions by RANDOM_CONFIG's protocol, all together."""
    from ldm.eval.evaluate import prepare_runs

    cfg = replace(RANDOM_CONFIG, backend=backend)
    runs, rejected = prepare_runs(env_ids, cfg)
    out = [RandomScore(r.env_id, None, error=r.error) for r in rejected]
    if not runs:
        return out
    t0 = time.time()
    agent = RandomAgent([r.act_spec for r in runs for _ in r.slots], seed=cfg.seed)
    run_protocol(runs, agent, cfg, progress=progress)
    seconds = time.time() - t0
    date = time.strftime("%Y-%m-%d")
    for run in runs:
        returns = [x for r in run.returns for x in r]
        error = run.error or (None if returns else "no episode ended within the step guard")
        out.append(
            RandomScore(
                env_id=run.env_id,
                mean=float(np.mean(returns)) if returns and not run.error else None,
                returns=tuple(tuple(r) for r in run.returns),
                episodes=len(returns),
                version=versions[run.env_id],
                seconds=round(seconds, 1),
                date=date,
                error=error,
            )
        )
    return out
