"""The worker side runs on the oldest interpreter a catalogued library needs (Python 3.6 with
numpy 1.19 and gym 0.9.7, gym-inventory's venv) and talks to this client on numpy 2.x.

Anything the worker imports in a library's venv lies in ldm/envs/worker/ (WORKER_FILES): a new
worker-side module (or new syntax in one) that the oldest interpreter cannot run fails here
first, and so does a worker-side import from outside that folder.
"""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ldm.envs.library.catalog import load_catalog
from ldm.envs.library.venvs import find_python
from ldm.envs.transport.backends import connect

WORKER_DIR = Path(__file__).resolve().parents[2] / "ldm" / "envs" / "worker"
OLDEST = min(
    (s.python for s in load_catalog().values() if s.python and s.installable),
    key=lambda v: tuple(int(x) for x in v.split(".")),
)


def imported_modules(name):
    """Top-level names of what `name`.py imports, siblings reached as `from ldm.envs.worker
    import x` counted as `x` (the in-process fallback of the script's own imports)."""
    out = set()
    for node in ast.walk(ast.parse((WORKER_DIR / f"{name}.py").read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "ldm.envs.worker":
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def worker_side_files():
    """server.py and every sibling module it imports, transitively (as `import x` / `from
    ldm.envs.worker import x`): all of it runs inside the library venvs."""
    todo, seen = ["server"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [m for m in imported_modules(name) if (WORKER_DIR / f"{m}.py").exists()]
    return sorted(f"{n}.py" for n in seen)


WORKER_FILES = worker_side_files()
#: what the worker side may import besides its siblings: the standard library, numpy, the
#: gym generations, and ldm only for the in-process fallback of the sibling imports
ALLOWED_OUTSIDE = {"numpy", "gym", "gymnasium", "ldm"}


def test_the_worker_side_is_found():
    assert {"server.py", "protocol.py", "wrappers.py", "legacy.py", "shm_worker.py"} <= set(
        WORKER_FILES
    )


def test_the_worker_side_is_its_own_folder():
    """Every module the worker imports lies in ldm/envs/worker/, and everything there (but the
    package file) is worker-side code: the folder is what Docker copies and the sandbox shows."""
    here = {p.name for p in WORKER_DIR.glob("*.py")} - {"__init__.py"}
    assert set(WORKER_FILES) == here
    siblings = {f[:-3] for f in here}
    for name in siblings:
        outside = imported_modules(name) - siblings - ALLOWED_OUTSIDE
        assert all(m in sys.stdlib_module_names for m in outside), (name, outside)


@pytest.mark.parametrize("name", WORKER_FILES)
def test_worker_files_compile_on_the_oldest_interpreter(name):
    assert OLDEST == "3.6"
    python = find_python(OLDEST)
    source = (WORKER_DIR / name).read_text()
    if python is None:  # no 3.6 here: the parser's best-effort check of newer syntax
        ast.parse(source, feature_version=(3, 6))
        pytest.skip(f"no Python {OLDEST} on this machine; checked with ast only")
    code = (
        "import sys, ast; src = open(sys.argv[1]).read(); compile(src, sys.argv[1], 'exec');"
        "bad = [n.lineno for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)"
        " and n.module == '__future__' and any(a.name == 'annotations' for a in n.names)];"
        "assert not bad, 'from __future__ import annotations needs 3.7: line %s' % bad"
    )
    proc = subprocess.run(
        [python, "-c", code, str(WORKER_DIR / name)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_worker_on_python36_gym097_numpy119_serves_a_client_on_numpy2():
    spec = load_catalog()["gym-inventory"]
    conn = connect("process", spec, "compat")
    try:
        info = conn.call(
            {"cmd": "init", "api": "gym", "imports": ["gym_inventory"], "wrappers": []}
        )
        assert info["python"].startswith("3.6.") and info["numpy"].startswith("1.")
        assert info["api_version"] == "0.9.7" and np.__version__.startswith("2.")
        made = conn.call({"cmd": "make", "env_id": "Inventory-v0", "count": 2})
        assert made["spaces"]["action"] == {"type": "Discrete", "n": 100, "start": 0}
        handles = made["handles"]
        reset = conn.call({"cmd": "reset", "handles": handles, "seeds": [1, 2]})
        assert reset["obs"] == [100, 100]
        # actions as a numpy 2 int64 array; the 1000-step limit of `timestep_limit` truncates
        for t in range(1, 1001):
            step = conn.call({"cmd": "step", "handles": handles, "actions": np.array([3, 0])})
            assert step["rewards"].dtype == np.float64 and step["rewards"].shape == (2,)
            assert not step["terminated"].any()
            assert step["truncated"].all() == (t == 1000), t
        conn.call({"cmd": "reset", "handles": handles})
        auto = conn.call(
            {"cmd": "step", "handles": handles, "actions": np.array([1, 1]), "autoreset": True}
        )
        assert auto["finals"] is None and not auto["truncated"].any()  # a new episode
        assert conn.call({"cmd": "close"}) == {}
    finally:
        conn.close()


@pytest.mark.slow
def test_the_shared_memory_path_on_python36_numpy119():
    """The same buffers on the oldest worker: mmap of an inherited memfd, numpy 1.19 views."""
    import ldm.envs as E
    from ldm.envs.transport.shm import SharedSteps

    env_id = "gym-inventory/InventoryFixed-v0"
    shared = E.make_vec(env_id, 2, workers=1)
    framed = E.make_vec(env_id, 2, workers=1, shared_memory=False)
    try:
        assert isinstance(shared._workers[0].steps, SharedSteps)
        assert not isinstance(framed._workers[0].steps, SharedSteps)
        for v in (shared, framed):
            v.reset(seed=1)
        for t in range(1, 1001):  # the 1000-step limit truncates: final observations too
            a = np.array([3, t % 5])
            x, y = shared.step(a), framed.step(a)
            for p, q in zip(x[:4], y[:4]):
                np.testing.assert_array_equal(p, q)
        assert x[3].all() and x[4]["final_obs"].tolist() == y[4]["final_obs"].tolist()
    finally:
        shared.close()
        framed.close()
