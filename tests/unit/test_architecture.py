"""Rules of the redesign that a review would otherwise have to re-check by hand (issue 10):
every function under harness/ fits on a screen."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
LONGEST_FUNCTION_LINES = 60


def long_functions(source: str, file: str, limit: int = LONGEST_FUNCTION_LINES) -> list[str]:
    """`file:line: name (N lines)` for each function or method longer than `limit` lines."""
    found = []
    for node in ast.walk(ast.parse(source, file)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append(f"{file}:{node.lineno}: {node.name} ({length} lines)")
    return found


def test_the_scan_finds_a_long_function() -> None:
    body = "\n".join(f"    x{index} = {index}" for index in range(LONGEST_FUNCTION_LINES))
    assert long_functions(f"def long():\n{body}\n", "f.py") == ["f.py:1: long (61 lines)"]
    assert long_functions("def short():\n    return 1\n", "f.py") == []


def test_no_function_under_harness_is_longer_than_sixty_lines() -> None:
    files = sorted(HARNESS.rglob("*.py"))
    assert len(files) > 50  # the scan sees the whole package
    found = [
        line
        for file in files
        for line in long_functions(file.read_text(), str(file.relative_to(HARNESS.parent)))
    ]
    assert not found, "split these functions:\n" + "\n".join(found)
