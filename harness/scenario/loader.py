"""Read a scenario file, check it against its topology, and report mistakes as file:line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError, ScenarioError
from harness.paths import REFERENCE_TOPOLOGY
from harness.scenario.model import (
    CHECKS,
    METRICS,
    LinkSelector,
    PartitionFault,
    RoleSelector,
    Scenario,
    Target,
)
from harness.topology.loader import LoadedTopology, load_topology
from harness.topology.model import Topology
from harness.validation import parse_document
from harness.yamlsource import SourceMap, load_yaml

LEADER_SELECTIONS = {"leader", "follower", "random-follower", "minority", "majority"}


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    source: SourceMap
    topology: LoadedTopology

    @property
    def file(self) -> Path:
        return self.source.file


def topology_file_for(scenario: Scenario, scenario_file: Path) -> Path:
    if scenario.topology == "reference":
        return REFERENCE_TOPOLOGY
    return (scenario_file.parent / scenario.topology).resolve()


def load_scenario(file: Path) -> LoadedScenario:
    try:
        data, source = load_yaml(file)
    except InputError as error:
        raise ScenarioError(str(error)) from None
    scenario = parse_document(Scenario, data, source, ScenarioError)
    topology_file = topology_file_for(scenario, file)
    if not topology_file.exists():
        raise ScenarioError(
            f"{source.where(('topology',))}: topology: no such file {topology_file}; "
            "use 'reference' or a path relative to the scenario file"
        )
    topology = load_topology(topology_file)
    problems = (
        _names_problems(scenario, source)
        + _target_problems(scenario, source, topology.topology)
        + _timing_problems(scenario, source)
    )
    if problems:
        raise ScenarioError("\n".join(problems))
    return LoadedScenario(scenario=scenario, source=source, topology=topology)


def _names_problems(scenario: Scenario, source: SourceMap) -> list[str]:
    problems = []
    for metric in scenario.slo:
        if metric not in METRICS:
            problems.append(
                f"{source.where(('slo', metric))}: slo.{metric}: unknown metric; "
                f"valid: {', '.join(METRICS)}"
            )
    for index, check in enumerate(scenario.checks):
        if check not in CHECKS:
            problems.append(
                f"{source.where(('checks', index))}: checks.{index}: unknown check {check!r}; "
                f"valid: {', '.join(CHECKS)}"
            )
    return problems


def _target_problems(scenario: Scenario, source: SourceMap, topology: Topology) -> list[str]:
    problems: list[str] = []
    services = ", ".join(sorted(topology.services))
    roles = sorted({service.role for service in topology.services.values()})

    def check_target(target: Target, path: tuple[str | int, ...]) -> None:
        where = f"{source.where(path)}: {'.'.join(map(str, path))}"
        if isinstance(target, str):
            if target not in topology.services:
                problems.append(f"{where}: unknown service {target!r}; services: {services}")
            return
        assert isinstance(target, RoleSelector)
        members = topology.services_with_role(target.role)
        if not members:
            problems.append(f"{where}: no service has role {target.role!r}; roles: {roles}")
        elif target.select in LEADER_SELECTIONS and not all(
            topology.services[m].raft for m in members
        ):
            problems.append(
                f"{where}: select {target.select!r} needs Raft members, but the services with "
                f"role {target.role!r} declare no 'raft' status"
            )

    for index, fault in enumerate(scenario.faults):
        base: tuple[str | int, ...] = ("faults", index)
        target = getattr(fault, "target", None)
        if target is not None:
            check_target(target, (*base, "target"))
        if isinstance(fault, PartitionFault):
            if fault.isolate is not None:
                check_target(fault.isolate, (*base, "isolate"))
            for g, group in enumerate(fault.groups or []):
                for m, member in enumerate(group):
                    check_target(member, (*base, "groups", g, m))
        link = getattr(fault, "link", None)
        if isinstance(link, str) and link not in topology.links:
            problems.append(
                f"{source.where((*base, 'link'))}: faults.{index}.link: unknown link {link!r}; "
                f"links: {', '.join(sorted(topology.links)) or 'none'}"
            )
        elif isinstance(link, LinkSelector):
            check_target(link.source, (*base, "link", "from"))
            check_target(link.target, (*base, "link", "to"))
    return problems


def _timing_problems(scenario: Scenario, source: SourceMap) -> list[str]:
    """Faults must leave a steady-state window before them and a settle time after them."""
    from harness.timeline import schedule

    problems = []
    window = scenario.steady_state.window_s
    for index, fault in enumerate(scenario.faults):
        if fault.at_s < window:
            problems.append(
                f"{source.where(('faults', index, 'at_s'))}: faults.{index}.at_s: {fault.at_s} s "
                f"leaves no steady-state window before it (steady_state.window_s is {window} s)"
            )
    last = max((step.offset_s for step in schedule(scenario.faults)), default=0.0)
    needed = last + scenario.settle_s + window
    if needed > scenario.load.duration_s:
        problems.append(
            f"{source.where(('load', 'duration_s'))}: load.duration_s: "
            f"{scenario.load.duration_s} s is too short: the last fault heals at {last:g} s, "
            f"then settle_s ({scenario.settle_s} s) and a steady-state window ({window} s) "
            f"are needed: at least {needed:g} s"
        )
    return problems
