"""The import order of docs/architecture.md: the light parts never pull in torch."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "ldm.envs",
        "ldm.data",
        "ldm.spaces",
        "ldm.tokenizer",
        "ldm.refgen",
        "ldm.cli",
        "ldm.train.config",
    ],
)
def test_light_modules_import_no_torch(module):
    code = (
        f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} imported {out.stdout.strip()}"


# docs/architecture.md: a part imports only parts to its left (lazy imports included)
ORDER = [
    "errors",
    "disk",
    "atomic",
    "cluster",
    "spaces",
    "tokens",
    "tokenizer",
    "envs",
    "data",
    "refgen",
    "model",
]
ORDER += ["train", "eval", "pipeline", "cli"]


def _imported_parts(path):
    import ast

    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "ldm" and len(parts) > 1:
                yield parts[1]


def test_parts_import_only_parts_to_their_left():
    from pathlib import Path

    root = Path(__file__).parent.parent / "ldm"
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        part = rel.parts[0].removesuffix(".py")
        if part not in ORDER:
            continue
        for used in _imported_parts(path):
            if used in ORDER and ORDER.index(used) > ORDER.index(part):
                bad.append(f"ldm/{rel} imports ldm.{used}")
    assert not bad, bad


def test_every_module_docstring_says_what_it_may_import():
    """STYLE: a module docstring says what the file owns and what it must not import; a new
    module without one fails here."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).parent.parent / "ldm"
    silent = []
    for path in sorted(root.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        lines = doc.strip().splitlines()
        if len(lines) < 2 or not re.search(r"(?i)\bimport", doc):
            silent.append(str(path.relative_to(root)))
    assert not silent, f"module docstrings that do not say what the file may import: {silent}"


def _module_graph(package):
    """Module -> the modules of `package` it imports (lazy imports included; `from p import
    m` of a submodule counts as importing m, not the package)."""
    import ast
    from pathlib import Path

    root = Path(__file__).parent.parent
    files = {}
    for path in (root / package.replace(".", "/")).rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in files.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names}
                out |= (subs & set(files)) | ({node.module} if subs - set(files) else set())
        graph[name] = {m for m in out if m in files and m != name}
    return graph


def _cycle(graph):
    """One import circle of `graph` as a list of modules, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_store_has_no_import_circle():
    """ldm/data: the store imports the writer; the writer needs only `RunHome`, a protocol."""
    graph = _module_graph("ldm.data")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_hub_has_no_import_circle_and_its_transport_no_front_door():
    """docs/architecture.md, "Who may import whom": ldm/envs imports downwards only."""
    graph = _module_graph("ldm.envs")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    front = {
        m
        for m in graph
        if m.count(".") == 2 and m.split(".")[2] not in ("transport", "library", "worker")
    }
    front.add("ldm.envs")
    upward = [
        (m, sorted(graph[m] & front))
        for m in graph
        if m.startswith(("ldm.envs.transport", "ldm.envs.worker")) and graph[m] & front
    ]
    assert not upward, upward
