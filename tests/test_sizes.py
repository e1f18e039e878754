"""The house's size limits (docs/architecture.md, "Sizes"): every file of `ldm/` is at most
400 lines and every function or method in it at most 80 lines (decorators and docstring
included), so that a file holds one concept and a function reads on one screen."""

import ast
from pathlib import Path

import pytest

LDM = Path(__file__).resolve().parents[1] / "ldm"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
SOURCES = sorted(LDM.rglob("*.py"))


def long_functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(name, first line, length) of each function longer than the limit, nested ones too."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES:
                out.append((node.name, first, length))
    return out


def test_sources_are_found():
    assert len(SOURCES) > 100 and (LDM / "envs" / "worker" / "server.py") in SOURCES


def test_the_length_check_counts_a_function_from_its_decorator_to_its_last_line():
    body = "\n".join(["    x = 1"] * (MAX_FUNCTION_LINES - 2))
    fits = ast.parse(f"@dec\ndef f():\n{body}\n")
    over = ast.parse(f"@dec\ndef f():\n{body}\n    return x\n")
    assert long_functions(fits) == []
    assert long_functions(over) == [("f", 1, MAX_FUNCTION_LINES + 1)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(LDM)))
def test_file_and_functions_within_limits(path: Path):
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_FILE_LINES, (
        f"{path.relative_to(LDM.parent)} has {lines} lines, more than {MAX_FILE_LINES}: "
        "split it along its concepts (one concept per file)"
    )
    over = long_functions(ast.parse(text))
    assert not over, (
        f"{path.relative_to(LDM.parent)}: functions over {MAX_FUNCTION_LINES} lines "
        f"(name, first line, length): {over}; split them into steps"
    )
