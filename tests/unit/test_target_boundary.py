"""The judge does not depend on the judged: no module under harness/ imports `targets` (the
systems under test), not at the top, not inside a function, not through importlib by name.
A target reaches the harness only as the object path its topology names
(harness/checks/target.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
_IMPORTERS = {"import_module", "__import__"}


def _names_targets(module: str | None) -> bool:
    return module is not None and (module == "targets" or module.startswith("targets."))


def imports_of_targets(source: str, file: str = "<source>") -> list[str]:
    """`file:line: statement` for every import of `targets` in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, file)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        elif isinstance(node, ast.Call) and _called_name(node.func) in _IMPORTERS:
            first = node.args[0] if node.args else None
            names = [first.value] if isinstance(first, ast.Constant) else []
        else:
            continue
        if any(isinstance(name, str) and _names_targets(name) for name in names):
            found.append(f"{file}:{node.lineno}: {ast.unparse(node)}")
    return found


def _called_name(function: ast.expr) -> str:
    if isinstance(function, ast.Attribute):
        return function.attr
    return function.id if isinstance(function, ast.Name) else ""


def test_no_module_under_harness_imports_targets() -> None:
    files = sorted(HARNESS.rglob("*.py"))
    assert len(files) > 50  # the scan sees the whole package
    found = [
        line
        for file in files
        for line in imports_of_targets(file.read_text(), str(file.relative_to(HARNESS.parent)))
    ]
    assert not found, "harness/ must not import the systems under test:\n" + "\n".join(found)


def test_importing_every_harness_module_loads_no_target() -> None:
    """At run time too: only loading a topology that names a target imports it."""
    program = """\
import importlib, pkgutil, sys
import harness
for module in pkgutil.walk_packages(harness.__path__, "harness."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] == "targets"))
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_scan_catches_every_way_of_importing_targets() -> None:
    source = """\
import json, targets.reference.engine as engine
from targets.reference.checks import TARGET
from targets import reference


def later():
    from targets.reference.engine.journal import read_entries
    import importlib
    return importlib.import_module("targets.reference.checks"), __import__("targets")
"""
    assert [line.split(": ")[0] for line in imports_of_targets(source)] == [
        "<source>:1",
        "<source>:2",
        "<source>:3",
        "<source>:7",
        "<source>:9",
        "<source>:9",
    ]


def test_the_scan_leaves_lookalikes_alone() -> None:
    source = """\
from harness.records import targets
import targets_of_opportunity
from . import targets
PATH = "targets.reference.checks:TARGET"  # an object path is data, loaded at run time
"""
    assert imports_of_targets(source) == []
