"""Cross-file rules of a scenario's load, checked at validate time with file:line: the load's
target exists in the topology, a user class file exists and defines its class, and a
read-back has writes to look for."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.excerpt import excerpt
from harness.load.targets import target_problems
from harness.scenario.model import Scenario
from harness.textfile import named_path, path_exists
from harness.topology.model import Topology
from harness.yamlsource import SourceMap

MAX_USER_FILE_BYTES = 1 << 20


def load_problems(scenario: Scenario, source: SourceMap, topology: Topology) -> list[str]:
    load = scenario.load
    problems: list[str] = []
    if load.target is not None:
        for field, problem in target_problems(load.target, topology):
            path = ("load", "target", field)
            problems.append(f"{source.where(path)}: load.target.{field}: {problem}")
    if load.user_class is not None:
        problems += _user_class_problems(scenario, source)
    if (load.http is not None or load.user_class is not None) and load.target is None:
        problems.append(
            f"{source.where(('load',))}: load.target: 'http' and 'user_class' need a target "
            "(service, role or via, and port)"
        )
    if scenario.read_back is not None:
        problems += _read_back_problems(scenario, source)
    return problems


def user_class_file(scenario: Scenario, scenario_file: Path) -> Path:
    assert scenario.load.user_class is not None
    return named_path(scenario_file, scenario.load.user_class.file)


def _user_class_problems(scenario: Scenario, source: SourceMap) -> list[str]:
    spec = scenario.load.user_class
    assert spec is not None
    where = f"{source.where(('load', 'user_class', 'file'))}: load.user_class.file"
    file = user_class_file(scenario, source.file)
    if not path_exists(file) or not file.is_file():
        return [f"{where}: no such file {excerpt(str(file))} (relative to the scenario)"]
    if file.stat().st_size > MAX_USER_FILE_BYTES:
        return [f"{where}: {excerpt(str(file))} is over {MAX_USER_FILE_BYTES} bytes"]
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except (SyntaxError, UnicodeDecodeError, ValueError) as error:
        return [f"{where}: {excerpt(str(file))} is not Python: {excerpt(str(error))}"]
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    if spec.name not in classes:
        name_where = f"{source.where(('load', 'user_class', 'name'))}: load.user_class.name"
        return [f"{name_where}: no class {spec.name!r} at the top of it; classes: {classes}"]
    return []


def _read_back_problems(scenario: Scenario, source: SourceMap) -> list[str]:
    read_back = scenario.read_back
    assert read_back is not None
    where = f"{source.where(('read_back',))}: read_back"
    http = scenario.load.http
    declared = {spec.name for spec in http.requests} if http else set()
    if read_back.kinds is None:
        if not any(spec.write for spec in (http.requests if http else [])):
            return [f"{where}.kinds: no request kind has 'write: true'; name the write kinds"]
        return []
    if http is not None:
        unknown = [kind for kind in read_back.kinds if kind not in declared]
        if unknown:
            return [f"{where}.kinds: unknown request kinds {unknown}; kinds: {sorted(declared)}"]
    return []
