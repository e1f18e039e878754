"""Looks inside a library's venv for `ldm envs discover`: which modules register its envs,
and which constructor arguments set the size of an env.

Run as a script with the library's own interpreter (`python probe.py modules DIST` or
`python probe.py params API MODULE... -- ID...`); prints one JSON object on the last line.

Modules are found the way a user would look for them: the distribution's `gymnasium.envs` /
`gym.envs` entry points, its top-level packages, their conventional `envs`, `env`, `gym`,
`environments` submodules, and any submodule whose source calls `register(`. Each candidate
is imported in turn and the Gym/Gymnasium registries are diffed, so a module is kept only when
importing it adds env ids.

Imports: standard library only, plus gym/gymnasium and the library itself (it runs in the
library's venv, down to Python 3.6: no syntax or stdlib newer than that).
"""

import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import traceback
import warnings

CONVENTIONAL = ("envs", "env", "gym", "environments", "gym_envs", "register", "registration")
MAX_CANDIDATES = 40
SIZE_WORDS = re.compile(
    r"size|width|height|dim|num|n_|length|grid|count|agents|view|window|history|lidar|obs|max_"
)


def _registries():
    """{api: registry dict} for the gym generations importable here."""
    out = {}
    for api in ("gymnasium", "gym"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(api)
        except Exception:
            continue
        reg = mod.envs.registry
        out[api] = getattr(reg, "env_specs", reg)  # gym < 0.26 keeps a dict in env_specs
    return out


def _ids(registries):
    return {api: set(reg.keys()) for api, reg in registries.items()}


def _distribution(dist):
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        try:
            import importlib_metadata as metadata
        except ImportError:
            return None
    try:
        return metadata.distribution(dist)
    except Exception:
        return None


def _top_levels(dist, d):
    names = []
    if d is not None:
        text = d.read_text("top_level.txt") or ""
        names = [n.strip() for n in text.split() if n.strip()]
        if not names:
            for f in d.files or ():
                parts = str(f).split("/")
                if parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] == "..":
                    continue
                top = parts[0][:-3] if parts[0].endswith(".py") else parts[0]
                if top.isidentifier() and top not in names and top != "__pycache__":
                    names.append(top)
    guess = dist.replace("-", "_").lower()
    if guess not in names:
        names.append(guess)
    return [n for n in names if not n.startswith("_") and n not in ("tests", "test")]


def _entry_points(d):
    out = []
    for ep in (d.entry_points if d is not None else ()) or ():
        if ep.group in ("gymnasium.envs", "gym.envs"):
            out.append(ep.value.replace(" ", ""))
    return out


def _registering_submodules(top):
    """Submodules of package `top` whose source calls register( (without importing them)."""
    try:
        spec = importlib.util.find_spec(top)
    except Exception:
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    found = []
    for root_dir in spec.submodule_search_locations:
        for dirpath, dirnames, filenames in os.walk(root_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_", "test")))
            for fname in sorted(filenames):
                if not fname.endswith(".py"):
                    continue
                path = os.path.join(dirpath, fname)
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                except OSError:
                    continue
                if re.search(r"\bregister\(\s*(id\s*=|['\"])", text):
                    rel = os.path.relpath(path, root_dir)[:-3].replace(os.sep, ".")
                    rel = rel[: -len(".__init__")] if rel.endswith("__init__") else rel
                    found.append(top + ("." + rel if rel and rel != "__init__" else ""))
    return found


def _candidates(dist):
    d = _distribution(dist)
    cands = list(_entry_points(d))
    for top in _top_levels(dist, d):
        cands.append(top)
        cands.extend(top + "." + sub for sub in CONVENTIONAL)
        cands.extend(_registering_submodules(top))
    seen, out = set(), []
    for c in cands:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out[:MAX_CANDIDATES]


def _load(name):
    """Import `module` or `module:function` (an entry point's value, which is then called)."""
    module, _, attr = name.partition(":")
    mod = importlib.import_module(module)
    if attr:
        obj = mod
        for part in attr.split("."):
            obj = getattr(obj, part)
        obj()


def find_modules(dist):
    """Modules (or `module:function` entry points) whose import registers env ids."""
    registries = _registries()
    before = _ids(registries)
    modules, errors, counts, api_counts = [], {}, {}, {}
    for name in _candidates(dist):
        if name.partition(":")[0] in sys.modules and ":" not in name:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _load(name)
        except ModuleNotFoundError as e:
            if e.name and name.partition(":")[0].startswith(e.name):
                continue  # the conventional submodule does not exist
            errors[name] = "%s: %s" % (type(e).__name__, e)
            continue
        except BaseException as e:  # a library failing at import is the finding
            errors[name] = "%s: %s" % (type(e).__name__, e)
            errors[name + " traceback"] = traceback.format_exc()[-2000:]
            continue
        registries = _registries()
        now = _ids(registries)
        added = 0
        for api, ids in now.items():
            new = ids - before.get(api, set())
            api_counts[api] = api_counts.get(api, 0) + len(new)
            added += len(new)
        before = now
        if added:
            modules.append(name)
            counts[name] = added
    api = max(api_counts, key=api_counts.get) if any(api_counts.values()) else None
    return {"modules": modules, "counts": counts, "errors": errors, "api": api}


def size_params(api, imports, ids):
    """Per env id: its registered int kwargs and its constructor's int defaults (size knobs)."""
    mod = importlib.import_module(api)
    for name in imports:
        _load(name)
    reg = mod.envs.registry
    reg = getattr(reg, "env_specs", reg)
    out = {}
    for rid in ids:
        spec = reg.get(rid)
        if spec is None:
            continue
        kwargs = dict(getattr(spec, "kwargs", None) or getattr(spec, "_kwargs", {}) or {})
        knobs = {k: v for k, v in kwargs.items() if _is_size(k, v)}
        entry = getattr(spec, "entry_point", None)
        try:
            if isinstance(entry, str):
                m, _, attr = entry.partition(":")
                entry = getattr(importlib.import_module(m), attr)
            sig = inspect.signature(entry)
            for p in sig.parameters.values():
                if p.name not in knobs and _is_size(p.name, p.default):
                    knobs[p.name] = p.default
        except Exception:
            pass
        out[rid] = knobs
    return out


def _is_size(name, value):
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value > 1
        and bool(SIZE_WORDS.search(name.lower()))
    )


def main(argv):
    if argv[0] == "modules":
        result = find_modules(argv[1])
    elif argv[0] == "params":
        sep = argv.index("--")
        result = size_params(argv[1], argv[2:sep], argv[sep + 1 :])
    else:
        raise SystemExit("usage: probe.py modules DIST | params API MODULE... -- ID...")
    sys.stdout.write("\n" + json.dumps(result, default=repr) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
