"""The client's messages to an env worker, one constructor per command of the worker's
`EnvServer` (ldm/envs/worker/server.py `COMMANDS`): the one place a `{"cmd": ...}` dict is
written. Each function's arguments are the command's, by the same names, so a misspelt key
fails where the message is made instead of in the worker.

Imports nothing of ldm (the catalog's spec is passed in); must not import the transport,
gymnasium or an environment library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

Message = dict[str, Any]


def init(spec: Any, paths: list[str] | None = None) -> Message:
    """`init` for a library spec (a `LibrarySpec`): its API, imports and declared wrappers;
    `paths`: its python_path as the worker sees it (default: beside the spec file)."""
    return {
        "cmd": "init",
        "api": spec.api,
        "imports": spec.imports,
        "wrappers": spec.wrappers,
        "paths": paths
        if paths is not None
        else [str(Path(spec.path).parent / p) for p in spec.python_path],
    }


def list_ids() -> Message:
    """`list_ids`: the env ids the worker's registry holds."""
    return {"cmd": "list_ids"}


def make(env_id: str, kwargs: dict[str, Any] | None, count: int = 1) -> Message:
    """`make`: `count` envs of `env_id` (the library's registered id) with these kwargs."""
    return {"cmd": "make", "env_id": env_id, "kwargs": kwargs, "count": count}


def reset(handles: Any, seeds: list[int | None], options: dict | None = None) -> Message:
    """`reset` of the envs `handles`, one seed each."""
    return {"cmd": "reset", "handles": handles, "seeds": seeds, "options": options}


def step(handles: Any, actions: Any, autoreset: bool = False) -> Message:
    """`step` of the envs `handles`, one action each; with `autoreset` an env whose episode
    ends is reset in the same step (its final observation and info in the reply). On a
    shared buffer a step is a signal instead (ldm/envs/transport/shm.py `SharedSteps`)."""
    return {"cmd": "step", "handles": handles, "actions": actions, "autoreset": autoreset}


def render(handles: Any, max_side: int = 0) -> Message:
    """`render`: a frame of each env (thinned in the worker beyond `max_side` pixels)."""
    return {"cmd": "render", "handles": handles, "max_side": max_side}


def close(handles: Any = None) -> Message:
    """`close` of the envs `handles`; None: every env, and the worker exits."""
    return {"cmd": "close", "handles": handles}


def shm_attach(
    fields: list[dict[str, Any]], size: int, autoreset: bool = True, **where: Any
) -> Message:
    """`shm_attach`: map the shared step buffer laid out as `fields` (`Layout.wire()`) of
    `size` bytes, and answer step signals through it (with `autoreset`: as `step`'s);
    `where`: how the worker finds it (`fd` or `path`), its wake-up FIFOs (`wake`) and poll
    budget (`poll_us`, `poll_shares_core`)."""
    return {"cmd": "shm_attach", "fields": fields, "size": size, "autoreset": autoreset, **where}
