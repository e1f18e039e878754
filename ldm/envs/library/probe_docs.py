"""What a library's own documentation says about using it, for `probe.py`: the code examples
in its README (the distribution's long description), in the docstrings of its env classes,
and in the test and example files it ships, read as Python and reduced to three findings:

- the modules the examples import (a module that registers envs on import, which the
  conventional names miss);
- the calls that register envs (`gym_classics.register('gymnasium')`: a function whose name
  says it registers, with literal arguments);
- the constructor arguments the examples pass (`gym.make("Id", P=[[...]])` or
  `MatrixMDPEnv(P=...)`), literal values only (`np.array(<literal>)` taken as its literal).

Nothing here imports or runs the library; `probe.py` decides what to do with the findings.

Imports: standard library only (runs in the library's venv, down to Python 3.6).
"""

import ast
import os
import re
import textwrap

#: Calls whose function name says they register envs (`register_envs`, `register_all`...).
REGISTERING = re.compile(r"^_?register(_\w+)?$|^(setup|load|install)_envs?$")
MAX_FILE_CHARS = 200000
MAX_FILES = 60
#: Files a package ships whose code shows how it is used.
EXAMPLE_FILE = re.compile(r"(^|[/\\])(tests?|examples?|demos?)([/\\]|_|\.py$)|(^|_)example")
FENCE = re.compile(r"^[ \t]*(```|~~~)[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*\1", re.M | re.S)


def snippets(text):
    """Python code in a README or docstring: fenced blocks (untagged or tagged Python),
    `>>>` sessions, indented `.. code::` blocks."""
    out = []
    for m in FENCE.finditer(text):
        if m.group(2).lower() in ("", "python", "py", "python3", "pycon"):
            out.append(m.group(3))
    session = [
        re.sub(r"^\s*(>>>|\.\.\.) ?", "", ln)
        for ln in text.splitlines()
        if re.match(r"^\s*(>>>|\.\.\.)( |$)", ln)
    ]
    if session:
        out.append("\n".join(session))
    for m in re.finditer(r"\.\. code(-block)?::[^\n]*\n((?:\n|[ \t]+[^\n]*\n)+)", text):
        out.append(textwrap.dedent(m.group(2)))
    return out


def parse(code):
    """Statements of a snippet: the whole snippet, else each line that parses on its own."""
    code = textwrap.dedent(code)
    try:
        return [ast.parse(code)]
    except (SyntaxError, ValueError):
        pass
    trees = []
    for line in code.splitlines():
        try:
            trees.append(ast.parse(line.strip()))
        except (SyntaxError, ValueError):
            continue
    return trees


def _name(func):
    """`gym.make` -> ("gym", "make"); `make` -> ("", "make")."""
    if isinstance(func, ast.Attribute):
        owner = func.value
        parts = []
        while isinstance(owner, ast.Attribute):
            parts.append(owner.attr)
            owner = owner.value
        if isinstance(owner, ast.Name):
            parts.append(owner.id)
        return ".".join(reversed(parts)), func.attr
    if isinstance(func, ast.Name):
        return "", func.id
    return "", ""


def literal(node):
    """A node's literal value (`np.array(<literal>)` as the literal), or raise ValueError."""
    if isinstance(node, ast.Call) and _name(node.func)[1] in ("array", "asarray", "tuple", "list"):
        if len(node.args) == 1:
            return literal(node.args[0])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -literal(node.operand)
    value = ast.literal_eval(node)
    if isinstance(value, tuple):
        return list(value)
    return value


def _value(node, names):
    """A literal, or a name the snippet assigned a literal to (`P = [[...]]` ... `P=P`)."""
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    return literal(node)


def _kwargs(call, names):
    out = {}
    for kw in call.keywords:
        if kw.arg is None:
            continue
        try:
            out[kw.arg] = _value(kw.value, names)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            continue
    return out


def _positional(call, skip, names):
    out = []
    for arg in call.args[skip:]:
        try:
            out.append(_value(arg, names))
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return out  # a later literal would sit in the wrong place
    return out


def _assigned(tree):
    """Names a snippet assigns a literal to (`P = np.array([[0.5, 0.5]])`)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    names[target.id] = literal(node.value)
                except (ValueError, TypeError, SyntaxError, RecursionError):
                    continue
    return names


def findings(texts):
    """From (label, text) pairs: {"imports": [...], "registers": [...], "make": [(id, kwargs,
    label)], "calls": [(name, args, kwargs, label)]}."""
    found = {"imports": [], "registers": [], "make": [], "calls": []}
    for label, text in texts:
        codes = [text] if label.endswith(".py") else snippets(text)
        for code in codes:
            for tree in parse(code):
                _walk(tree, label, found)
    return found


def _walk(tree, label, found):
    aliases, names = {}, _assigned(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found["imports"].append(a.name)
                aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found["imports"].append(node.module)
        elif isinstance(node, ast.Call):
            owner, name = _name(node.func)
            if name == "make" and node.args:
                try:
                    env_id = literal(node.args[0])
                except (ValueError, TypeError, SyntaxError):
                    continue
                if isinstance(env_id, str):
                    found["make"].append((env_id, _kwargs(node, names), label))
            elif (
                REGISTERING.match(name)
                and owner
                and owner.split(".")[0] not in ("gym", "gymnasium")
            ):
                module = aliases.get(owner.split(".")[0], owner.split(".")[0])
                module = ".".join([module] + owner.split(".")[1:])
                args = _positional(node, 0, names)
                if len(args) == len(node.args) and not node.keywords:
                    found["registers"].append((module, name, args))
            elif name and name[0].isupper():
                found["calls"].append(
                    (name, _positional(node, 0, names), _kwargs(node, names), label)
                )


def package_texts(readme, roots):
    """(label, text) of the README and of the example/test files under the package roots."""
    texts = [("README", readme)] if readme else []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            for fname in sorted(filenames):
                path = os.path.join(dirpath, fname)
                rel = os.path.relpath(path, os.path.dirname(root))
                wanted = fname.endswith(".py") and EXAMPLE_FILE.search(rel)
                if not (wanted or fname.lower().endswith((".md", ".rst"))):
                    continue
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        texts.append((rel, fh.read(MAX_FILE_CHARS)))
                except OSError:
                    continue
                if len(texts) > MAX_FILES:
                    return texts
    return texts
