"""Read a scenario file, check it against its topology, and report mistakes as file:line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError, ScenarioError
from harness.excerpt import excerpt
from harness.faults.selectors import topology_members
from harness.paths import REFERENCE_TOPOLOGY
from harness.scenario.fault_fields import LinkSelector, RoleSelector, Target
from harness.scenario.load_checks import load_problems
from harness.scenario.model import CHECKS, METRICS, Scenario
from harness.textfile import named_path, path_exists
from harness.topology.loader import LoadedTopology, load_topology
from harness.topology.model import Topology
from harness.topology.plan import check_plan
from harness.validation import join_problems, nested, parse_document
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
    return named_path(scenario_file, scenario.topology)


def load_scenario(file: Path) -> LoadedScenario:
    try:
        data, source = load_yaml(file)
    except InputError as error:
        raise ScenarioError(str(error)) from None
    scenario = parse_document(Scenario, data, source, ScenarioError)
    topology = _load_its_topology(scenario, source)
    problems = (
        _names_problems(scenario, source, topology)
        + _target_problems(scenario, source, topology.topology)
        + _timing_problems(scenario, source)
        + _clock_problems(scenario, source, topology)
        + load_problems(scenario, source, topology.topology)
    )
    if problems:
        raise ScenarioError(join_problems(problems))
    return LoadedScenario(scenario=scenario, source=source, topology=topology)


def _load_its_topology(scenario: Scenario, source: SourceMap) -> LoadedTopology:
    """The topology, loaded and planned with stand-in ports, so that a placeholder `up` could
    not resolve fails here, at validate time, and not an hour into a suite."""
    topology_file = topology_file_for(scenario, source.file)
    if not path_exists(topology_file):
        raise ScenarioError(
            f"{source.where(('topology',))}: topology: no such file {excerpt(str(topology_file))}; "
            "use 'reference' or a path relative to the scenario file"
        )
    try:
        topology = load_topology(topology_file)
        check_plan(topology)
    except InputError as error:
        # The topology's own file:line first, then where the scenario names it.
        raise ScenarioError(
            f"{source.where(('topology',))}: topology: {excerpt(scenario.topology)} is not a "
            "valid topology:\n" + nested(str(error))
        ) from None
    return topology


def _names_problems(scenario: Scenario, source: SourceMap, topology: LoadedTopology) -> list[str]:
    problems = []
    for metric in scenario.slo:
        if metric not in METRICS:
            problems.append(
                f"{source.where(('slo', metric))}: slo.{metric[:40]}: unknown metric; "
                f"valid: {', '.join(METRICS)}"
            )
    return problems + _check_name_problems(scenario, source, topology)


def _check_name_problems(
    scenario: Scenario, source: SourceMap, topology: LoadedTopology
) -> list[str]:
    """A listed check is one the topology's target provides (a user's target brings its own
    names), or one of the reference system's, which another target does not provide: that
    check is then not applicable, so one scenario serves several systems. Anything else is a
    typo, refused here rather than silently not applicable."""
    target = topology.target()
    known = set(target.checks) | set(CHECKS)
    problems = []
    for index, check in enumerate(scenario.checks):
        if check not in known:
            problems.append(
                f"{source.where(('checks', index))}: checks.{index}: unknown check "
                f"{excerpt(check)}; target {excerpt(target.name)} provides: "
                f"{', '.join(sorted(target.checks)) or 'none'}"
                f"; the reference system's: {', '.join(CHECKS)}"
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
                problems.append(f"{where}: unknown service {excerpt(target)}; services: {services}")
            return
        assert isinstance(target, RoleSelector)
        members = topology_members(target, topology)
        clusters = topology.raft_clusters()
        if target.cluster is not None and target.cluster not in clusters:
            problems.append(
                f"{where}: no Raft cluster {excerpt(target.cluster)}; "
                f"clusters: {', '.join(clusters) or 'none'}"
            )
        elif not members:
            problems.append(f"{where}: no service has role {excerpt(target.role)}; roles: {roles}")
        elif target.select in LEADER_SELECTIONS and not all(
            topology.services[m].raft for m in members
        ):
            problems.append(
                f"{where}: select {target.select!r} needs Raft members, but the services with "
                f"role {target.role!r} declare no 'raft' status"
            )

    for index, fault in enumerate(scenario.faults):
        base: tuple[str | int, ...] = ("faults", index)
        for field_path, target in fault.named_targets():
            check_target(target, (*base, *field_path))
        link = getattr(fault, "link", None)
        if isinstance(link, str) and link not in topology.links:
            problems.append(
                f"{source.where((*base, 'link'))}: faults.{index}.link: unknown link "
                f"{excerpt(link)}; links: {', '.join(sorted(topology.links)) or 'none'}"
            )
        elif isinstance(link, LinkSelector):
            before = len(problems)
            check_target(link.source, (*base, "link", "from"))
            check_target(link.target, (*base, "link", "to"))
            if len(problems) == before:  # both ends exist: is there a link between them?
                problems.extend(_link_direction_problems(link, (*base, "link"), source, topology))
    return problems


def _link_direction_problems(
    link: LinkSelector, path: tuple[str | int, ...], source: SourceMap, topology: Topology
) -> list[str]:
    """A link fault needs a topology link from `from` to `to`, in that direction. For a
    selector, every member it may pick at injection needs one (all: at least one)."""
    if isinstance(link.target, str):
        members, every_member = [link.target], True
    else:
        members = sorted(topology_members(link.target, topology))
        every_member = link.target.select != "all"
    linked = {each.target for each in topology.links.values() if each.source == link.source}
    missing = [member for member in members if member not in linked]
    if not missing or (not every_member and len(missing) < len(members)):
        return []
    reverse = any(
        each.source in missing and each.target == link.source for each in topology.links.values()
    )
    hint = "; links go from the client to the server, swap from and to" if reverse else ""
    return [
        f"{source.where(path)}: {'.'.join(map(str, path))}: the topology has no link from "
        f"{excerpt(link.source)} to {', '.join(map(excerpt, missing))}{hint}"
    ]


def _clock_problems(scenario: Scenario, source: SourceMap, topology: LoadedTopology) -> list[str]:
    """A clock fault on a program libfaketime cannot reach (static, Go) is refused here: it
    would run, do nothing, and be judged not effective an hour into a suite."""
    from harness.faults.effects_clock import clock_skew_refusals
    from harness.faults.registry import kind_of

    faults = [
        (
            source.where(("faults", index)) + f": faults.{index}",
            kind_of(fault).clock_controlled(fault, topology.topology),
        )
        for index, fault in enumerate(scenario.faults)
    ]
    commands = {name: s.command for name, s in topology.topology.services.items()}
    refusals = clock_skew_refusals(faults, commands, topology.file.parent)
    return [f"{where}: {why}" for where, why in refusals]


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
