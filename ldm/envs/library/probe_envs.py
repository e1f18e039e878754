"""Per-env facts for `ldm envs discover`, read from a library's registry in its own venv
(`python probe.py kwargs|families ...` dispatches here):

- `documented_kwargs`: for envs whose constructor requires arguments the registration does
  not give, the values the library's own examples pass (README, docstrings of the env class
  and its `__init__`, shipped tests/examples: `gym.make("Id", a=...)` or `EnvClass(a, b=...)`),
  and the arguments that no example gives;
- `families`: each env's class (`module:Qualname` of its entry point), so that a library's
  registered variants count as one family.

Imports: standard library, `probe` (and through it the worker's `env_imports`) and
`probe_docs` (siblings), gym/gymnasium and the library itself; runs down to Python 3.6.
"""

import importlib
import inspect

try:  # run as a script: the directory is on sys.path
    import probe
    import probe_docs
except ImportError:  # imported as part of ldm
    from ldm.envs.library import probe, probe_docs


def _registry(api, imports):
    mod = importlib.import_module(api)
    for name in imports:
        probe.env_imports.import_name(name)
    reg = mod.envs.registry
    return getattr(reg, "env_specs", reg)


def _entry(spec):
    entry = getattr(spec, "entry_point", None) or getattr(spec, "_entry_point", None)
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        entry = obj
    return entry


def _registered_kwargs(spec):
    return dict(getattr(spec, "kwargs", None) or getattr(spec, "_kwargs", {}) or {})


def _required(entry, given):
    """Parameter names the constructor requires that `given` does not hold, and the names of
    all its parameters in order (to place positional example arguments)."""
    sig = inspect.signature(entry)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [
        p.name
        for p in params
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in given
    ]
    return required, named


def _examples(rid, entry, named, docs):
    """(kwargs, label) of each example that constructs this env: make calls with its id,
    calls of its class (positional arguments placed by the signature)."""
    out = []
    short = rid.split("/")[-1].split(":")[-1]
    for env_id, kwargs, label in docs["make"]:
        if env_id == rid or env_id.split("/")[-1].split(":")[-1] == short:
            out.append((kwargs, label))
    cls = getattr(entry, "__name__", "")
    for name, args, kwargs, label in docs["calls"]:
        if name == cls:
            placed = dict(zip(named, args))
            placed.update(kwargs)
            out.append((placed, label))
    return out


def _own_docs(entry):
    """Findings in the docstrings of the env class and its constructor."""
    texts = []
    for obj in (entry, getattr(entry, "__init__", None)):
        doc = inspect.getdoc(obj) if obj is not None else None
        if doc:
            texts.append(("docstring of %s" % getattr(entry, "__name__", "?"), doc))
    return probe_docs.findings(texts)


def documented_kwargs(dist, api, imports, ids):
    """Per env id whose constructor needs arguments: {"kwargs": values the examples give for
    them, "missing": required arguments no example gives, "from": where the values were read}.
    Envs whose constructor needs nothing beyond its registration are left out."""
    reg = _registry(api, imports)
    package_docs = probe._docs(dist)
    out = {}
    for rid in ids:
        spec = reg.get(rid)
        if spec is None:
            continue
        given = _registered_kwargs(spec)
        try:
            entry = _entry(spec)
            required, named = _required(entry, given)
        except Exception:
            continue
        if not required:
            continue
        docs = _own_docs(entry)
        examples = _examples(rid, entry, named, docs) + _examples(rid, entry, named, package_docs)
        # the first example that gives every required argument, else what they give together
        full = [(kw, label) for kw, label in examples if all(r in kw for r in required)]
        chosen = full[:1] or examples
        kwargs, labels = {}, []
        for kw, label in chosen:
            for k, v in kw.items():
                if k in named and k not in given and k not in kwargs and v is not None:
                    kwargs[k] = v
            labels.append(label)
        missing = [r for r in required if r not in kwargs]
        out[rid] = {"kwargs": kwargs, "missing": missing, "from": sorted(set(labels))}
    return out


def families(api, imports, ids):
    """Per env id: its entry point as `module:Qualname` (its family); ids whose entry point
    cannot be resolved are left out."""
    reg = _registry(api, imports)
    out = {}
    for rid in ids:
        spec = reg.get(rid)
        if spec is None:
            continue
        try:
            entry = _entry(spec)
        except Exception:
            continue
        module = getattr(entry, "__module__", None) or "?"
        name = getattr(entry, "__qualname__", None) or getattr(entry, "__name__", repr(entry))
        out[rid] = "%s:%s" % (module, name)
    return out
