"""Environment variables are declared once (harness/settings.py) and documented in the README."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from harness import settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLE_NAME = re.compile(r"^(HFTCHAOS_[A-Z_]+|TOXIPROXY_BIN|KAFKA_HOME)$")


def variables_named_outside_settings(source: str, file: str) -> list[str]:
    """`file:line: NAME` for each string that is exactly an environment variable's name."""
    return [
        f"{file}:{node.lineno}: {node.value}"
        for node in ast.walk(ast.parse(source, file))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and VARIABLE_NAME.match(node.value)
    ]


def test_the_scan_finds_a_variable_read_by_its_own_string() -> None:
    source = (
        'import os\nhome = os.environ.get("HFTCHAOS_HOME", "")\n"""HFTCHAOS_HOME is prose."""\n'
    )
    assert variables_named_outside_settings(source, "m.py") == ["m.py:2: HFTCHAOS_HOME"]


def test_no_module_names_an_environment_variable_but_settings() -> None:
    found = [
        line
        for file in sorted((ROOT / "harness").rglob("*.py"))
        if file.name != "settings.py"
        for line in variables_named_outside_settings(file.read_text(), str(file.relative_to(ROOT)))
    ]
    assert not found, "read these through harness.settings:\n" + "\n".join(found)


def test_every_variable_a_user_sets_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        s.variable for s in settings.SETTINGS if not s.set_by_harness and s.variable not in readme
    ]
    assert not missing


def test_a_blank_value_means_the_default() -> None:
    assert settings.RESULTS.read({"HFTCHAOS_RESULTS": "  "}) is None
    assert settings.RESULTS.value({"HFTCHAOS_RESULTS": "  "}) == "./results"
    assert settings.RESULTS.value({"HFTCHAOS_RESULTS": " /srv/r "}) == "/srv/r"
    assert len({s.variable for s in settings.SETTINGS}) == len(settings.SETTINGS)
