"""Looks inside a library's venv for `ldm envs discover`: which modules register its envs,
which constructor arguments set the size of an env, and (`probe_envs.py`) the constructor
arguments its docs give and each env's class.

Run as a script with the library's own interpreter (`python probe.py modules DIST`,
`params API MODULE... -- ID...`, `kwargs DIST API MODULE... -- ID...` or
`families API MODULE... -- ID...`); prints one JSON object on the last line.

Modules are found the way a user would look for them: the distribution's `gymnasium.envs` /
`gym.envs` entry points, its top-level packages, their conventional `envs`, `env`, `gym`,
`environments` submodules, the modules its README and shipped tests/examples import or call
a registration function of (`gym_classics.register('gymnasium')`, `probe_docs.py`), any
submodule whose source calls `register(`, then the package's functions whose name and
signature say they register envs (`register_envs()`, `register(api)`: called), and last,
when nothing registered, the env classes it defines (`module:Class`, registered as
`Class-v0`, as the worker does). Each candidate
is imported (or called) in turn and the Gym/Gymnasium registries are diffed, so a candidate
is kept only when it adds env ids.

Imports: standard library only, plus `probe_docs` (a sibling), the worker's `env_imports`
(how a spec's import names are loaded, loaded from its file), gym/gymnasium and the library
itself (it runs in the library's venv, down to Python 3.6: no syntax or stdlib newer than that).
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


def _worker_module(name):
    """A module of ldm/envs/worker/ (beside this script's folder), loaded from its file (not
    put on sys.path, where its names could shadow the library's own modules)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "worker", name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


try:
    import probe_docs  # run as a script: its directory is on sys.path

    env_imports = _worker_module("env_imports")  # imports a spec names, as the worker does
except ImportError:  # imported as part of ldm
    from ldm.envs.library import probe_docs
    from ldm.envs.worker import env_imports

CONVENTIONAL = ("envs", "env", "gym", "environments", "gym_envs", "register", "registration")
MAX_CANDIDATES = 60
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


def _readme(d):
    """The distribution's long description (its README), from its metadata."""
    if d is None:
        return ""
    meta = d.metadata
    body = meta.get_payload() if hasattr(meta, "get_payload") else ""
    return (body or meta.get("Description") or "")[:200000]


def _package_roots(tops):
    roots = []
    for top in tops:
        try:
            spec = importlib.util.find_spec(top)
        except Exception:
            continue
        if spec is not None and spec.submodule_search_locations:
            roots.extend(spec.submodule_search_locations)
    return roots


def _docs(dist, d=None):
    """What the README and the shipped tests/examples show (probe_docs.findings)."""
    d = d if d is not None else _distribution(dist)
    tops = _top_levels(dist, d)
    return probe_docs.findings(probe_docs.package_texts(_readme(d), _package_roots(tops)))


def _documented(dist, d, tops):
    """Candidates the docs name: modules they import or prefix an id with (`mod:Id-v0`), and
    the registration calls they make (`module:function(args)`), within the package's own
    top-level modules."""
    found = _docs(dist, d)
    mods = list(found["imports"])
    mods += [env_id.partition(":")[0] for env_id, _, _ in found["make"] if ":" in env_id]
    calls = [
        "%s:%s" % (module, name) + ("(%s)" % ", ".join(repr(a) for a in args) if args else "")
        for module, name, args in found["registers"]
    ]
    ours = lambda name: name.partition(":")[0].split(".")[0] in tops  # noqa: E731
    return [m for m in mods + calls if ours(m)]


def _candidates(dist):
    d = _distribution(dist)
    cands = list(_entry_points(d))
    tops = _top_levels(dist, d)
    for top in tops:
        cands.append(top)
        cands.extend(top + "." + sub for sub in CONVENTIONAL)
    try:
        cands.extend(_documented(dist, d, tops))
    except Exception:  # the docs are a hint: unreadable ones leave the other candidates
        pass
    for top in tops:
        cands.extend(_registering_submodules(top))
    seen, out = set(), []
    for c in cands:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out[:MAX_CANDIDATES]


def _env_classes(tops):
    """`module:Class` for the env classes (gym/gymnasium `Env` subclasses) the package
    defines and its imported modules expose, by their first public name."""
    out, seen = [], set()
    for modname in sorted(sys.modules):
        if modname.split(".")[0] not in tops or sys.modules[modname] is None:
            continue
        for attr, cls in sorted(vars(sys.modules[modname]).items()):
            if attr.startswith("_") or not inspect.isclass(cls) or id(cls) in seen:
                continue
            if (cls.__module__ or "").split(".")[0] not in tops or inspect.isabstract(cls):
                continue
            bases = [(c.__module__ or "").split(".")[0] for c in cls.__mro__ if c.__name__ == "Env"]
            if any(b in ("gym", "gymnasium") for b in bases):
                seen.add(id(cls))
                out.append("%s:%s" % (modname, attr))
    return out


#: Parameter names of a registration function that take the API to register with.
API_PARAM = re.compile(r"api|package|backend|framework|lib|gym|env_type|kind|flavou?r|target")


def _registration_calls(tops):
    """`module:function(...)` for the functions of the package's imported modules whose name
    says they register envs (`register_envs`, `register_all`...) and that take no required
    argument, or one that names the API (then tried with "gymnasium" and "gym")."""
    out, seen = [], set()
    for modname in sorted(sys.modules):  # a package before its submodules: its public names
        if modname.split(".")[0] not in tops or sys.modules[modname] is None:
            continue
        for attr, fn in sorted(vars(sys.modules[modname]).items()):
            if not (inspect.isfunction(fn) and probe_docs.REGISTERING.match(attr)):
                continue
            if id(fn) in seen:
                continue  # re-exported: called once, by its first name
            seen.add(id(fn))
            if (fn.__module__ or "").split(".")[0] not in tops:
                continue  # gym's own register, imported into the package
            try:
                params = inspect.signature(fn).parameters.values()
            except (TypeError, ValueError):
                continue
            required = [
                p
                for p in params
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            if not required:
                out.append("%s:%s" % (modname, attr))
            elif len(required) == 1 and API_PARAM.search(required[0].name.lower()):
                out += ["%s:%s(%r)" % (modname, attr, api) for api in ("gymnasium", "gym")]
    return out


def find_modules(dist):
    """Modules (or `module:function` entry points and registration calls) whose import or
    call registers env ids."""
    registries = _registries()
    state = {"before": _ids(registries), "api_counts": {}}
    found = {"modules": [], "counts": {}, "errors": {}}
    for name in _candidates(dist):
        if name.partition(":")[0] in sys.modules and ":" not in name:
            continue
        _try(name, state, found)
    tops = _top_levels(dist, _distribution(dist))
    called = set()
    for name in _registration_calls(tops):
        base = name.partition("(")[0]
        if base in called or name in found["modules"]:
            continue  # a function that registered with "gymnasium" is not called again
        if _try(name, state, found):
            called.add(base)
    if not found["modules"]:  # nothing registers: the env classes it defines, registered here
        for name in _env_classes(tops):
            _try(name, state, found)
    counts = state["api_counts"]
    api = max(counts, key=counts.get) if any(counts.values()) else None
    return dict(found, api=api)


def _try(name, state, found):
    """Load one candidate; keep it when the registries grew. Returns whether they did."""
    errors = found["errors"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env_imports.import_name(name)
    except ModuleNotFoundError as e:
        if e.name and name.partition(":")[0].startswith(e.name):
            return False  # the conventional submodule does not exist
        errors[name] = "%s: %s" % (type(e).__name__, e)
        return False
    except BaseException as e:  # a library failing at import is the finding
        errors[name] = "%s: %s" % (type(e).__name__, e)
        errors[name + " traceback"] = traceback.format_exc()[-2000:]
        return False
    now = _ids(_registries())
    added = 0
    for api, ids in now.items():
        new = ids - state["before"].get(api, set())
        state["api_counts"][api] = state["api_counts"].get(api, 0) + len(new)
        added += len(new)
    state["before"] = now
    if added:
        found["modules"].append(name)
        found["counts"][name] = added
    return bool(added)


def size_params(api, imports, ids):
    """Per env id: its registered int kwargs and its constructor's int defaults (size knobs)."""
    mod = importlib.import_module(api)
    for name in imports:
        env_imports.import_name(name)
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


def _split_ids(args):
    sep = args.index("--")
    return args[:sep], args[sep + 1 :]


def main(argv):
    import probe_envs  # per-env facts; it imports this module's helpers

    cmd, args = argv[0], argv[1:]
    if cmd == "modules":
        result = find_modules(args[0])
    elif cmd == "params":
        head, ids = _split_ids(args)
        result = size_params(head[0], head[1:], ids)
    elif cmd == "kwargs":
        head, ids = _split_ids(args)
        result = probe_envs.documented_kwargs(head[0], head[1], head[2:], ids)
    elif cmd == "families":
        head, ids = _split_ids(args)
        result = probe_envs.families(head[0], head[1:], ids)
    else:
        raise SystemExit(
            "usage: probe.py modules DIST | params API MODULE... -- ID... | "
            "kwargs DIST API MODULE... -- ID... | families API MODULE... -- ID..."
        )
    sys.stdout.write("\n" + json.dumps(result, default=repr) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
