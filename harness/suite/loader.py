"""Read a suite file, load every scenario it names up front (a typo must not surface an hour
into a nightly run), and report mistakes as file:line: field: what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.excerpt import excerpt
from harness.scenario.loader import load_scenario
from harness.suite.classes import scenario_fault_class
from harness.suite.model import Suite
from harness.textfile import named_path, path_exists
from harness.validation import join_problems, nested, parse_document
from harness.yamlsource import SourceMap, load_yaml


class SuiteError(InputError):
    """A suite file, or a scenario it names, is wrong (names file, line, field)."""


@dataclass(frozen=True)
class PlannedScenario:
    """One entry of the suite, resolved: what to run, how often, what it stands for."""

    file: Path
    name: str
    repeat: int
    fault_class: str
    load_duration_s: float
    downtime_budget_ms: float | None


@dataclass(frozen=True)
class LoadedSuite:
    suite: Suite
    source: SourceMap
    scenarios: list[PlannedScenario]

    @property
    def file(self) -> Path:
        return self.source.file

    @property
    def total_runs(self) -> int:
        return sum(planned.repeat for planned in self.scenarios)


def load_suite(file: Path) -> LoadedSuite:
    try:
        data, source = load_yaml(file)
    except InputError as error:
        raise SuiteError(str(error)) from None
    suite = parse_document(Suite, data, source, SuiteError)
    planned: list[PlannedScenario] = []
    problems: list[str] = []
    for index, entry in enumerate(suite.scenarios):
        where = f"{source.where(('scenarios', index, 'file'))}: scenarios.{index}.file"
        scenario_file = named_path(file, entry.file)
        if not path_exists(scenario_file):
            problems.append(
                f"{where}: no such file {excerpt(str(scenario_file))} "
                f"(paths are relative to {file})"
            )
            continue
        try:
            loaded = load_scenario(scenario_file)
        except InputError as error:
            # A suite's problems are capped like any document's; each scenario shows a few.
            problems.append(f"{where}: the scenario is not valid:\n" + nested(str(error), 5))
            continue
        scenario = loaded.scenario
        if any(scenario.name == earlier.name for earlier in planned):
            problems.append(
                f"{where}: scenario {scenario.name!r} is listed twice; use 'repeat' instead"
            )
            continue
        planned.append(
            PlannedScenario(
                file=scenario_file,
                name=scenario.name,
                repeat=entry.repeat,
                fault_class=entry.fault_class
                or scenario_fault_class(scenario, loaded.topology.topology),
                load_duration_s=scenario.load.duration_s,
                downtime_budget_ms=scenario.downtime_budget_ms,
            )
        )
    if problems:
        raise SuiteError(join_problems(problems))
    return LoadedSuite(suite=suite, source=source, scenarios=planned)
