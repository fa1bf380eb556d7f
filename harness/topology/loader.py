"""Read a topology file into a validated `Topology`, with errors that point at file:line."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.target import Target, load_target
from harness.errors import InputError, TargetError, TopologyError
from harness.excerpt import excerpt
from harness.status_adapter import StatusShapeError, check_shape
from harness.topology.members import expand_members
from harness.topology.model import Topology
from harness.validation import join_problems, parse_document
from harness.yamlsource import SourceMap, load_yaml


@dataclass(frozen=True)
class LoadedTopology:
    topology: Topology
    source: SourceMap

    @property
    def file(self) -> Path:
        return self.source.file

    def with_topology(self, topology: Topology) -> LoadedTopology:
        """The same file and source map, for a topology derived from this one."""
        return LoadedTopology(topology, self.source)

    def target(self) -> Target[Any]:
        """The system's checks, as `target:` names them (checked when the file was loaded;
        importlib keeps the module, so asking again costs nothing)."""
        return load_target(self.topology.target, self.file.parent)


def load_topology(file: Path) -> LoadedTopology:
    try:
        data, source = load_yaml(file)
    except InputError as error:
        raise TopologyError(str(error)) from None
    data = expand_members(data, source)
    topology = parse_document(Topology, data, source, TopologyError)
    _check_references(topology, source)
    _check_status_shapes(topology, source)
    _check_target(topology, source)
    _check_network(topology, source)
    return LoadedTopology(topology=topology, source=source)


def _check_target(topology: Topology, source: SourceMap) -> None:
    """Import the target now, so a bad `target:` stops `validate` and `run` before anything
    starts, with the file and line."""
    try:
        load_target(topology.target, source.file.parent)
    except TargetError as error:
        raise TopologyError(f"{source.where(('target',))}: target: {error}") from None


def _check_network(topology: Topology, source: SourceMap) -> None:
    """`network: namespaces` needs the local backend, root and iproute2: say so at validate."""
    if topology.network != "namespaces":
        return
    problem = None
    if topology.backend not in (None, "local"):
        problem = f"only the local backend makes namespaces, not {excerpt(topology.backend)}"
    elif os.geteuid() != 0:
        problem = "making network namespaces needs root: run hftchaos as root"
    elif shutil.which("ip") is None or shutil.which("iptables") is None:
        problem = "making network namespaces needs `ip` and `iptables` (iproute2, iptables)"
    if problem:
        raise TopologyError(f"{source.where(('network',))}: network: {problem}")


def _check_status_shapes(topology: Topology, source: SourceMap) -> None:
    """A Prometheus selector that cannot parse would make every poll "no answer": refuse it."""
    problems = []
    for name, service in topology.services.items():
        if service.raft is None:
            continue
        try:
            check_shape(service.raft)
        except StatusShapeError as error:
            where = source.where(("services", name, "raft"))
            problems.append(f"{where}: services.{name}.raft: {error}")
    if problems:
        raise TopologyError(join_problems(problems))


def _check_references(topology: Topology, source: SourceMap) -> None:
    known = ", ".join(sorted(topology.services))
    problems: list[str] = []
    for name, service in topology.services.items():
        for index, dependency in enumerate(service.depends_on):
            if dependency not in topology.services:
                where = source.where(("services", name, "depends_on", index))
                problems.append(
                    f"{where}: services.{name}.depends_on: unknown service {excerpt(dependency)}; "
                    f"known: {known}"
                )
    for name, link in topology.links.items():
        for field, end in (("from", link.source), ("to", link.target)):
            if end not in topology.services:
                where = source.where(("links", name, field))
                problems.append(
                    f"{where}: links.{name}.{field}: unknown service {end!r}; known: {known}"
                )
        target = topology.services.get(link.target)
        if target is not None and link.port not in target.ports:
            where = source.where(("links", name, "port"))
            problems.append(
                f"{where}: links.{name}.port: service {link.target!r} has no port "
                f"{link.port!r}; its ports: {', '.join(target.ports) or 'none'}"
            )
    if topology.links and topology.toxiproxy_service() is None:
        problems.append(
            f"{source.where(('links',))}: links: links need a service with role 'toxiproxy' "
            "and a port named 'api'"
        )
    cycle = _cycle(topology.services, lambda name: topology.services[name].depends_on)
    if cycle:
        where = source.where(("services", cycle[0], "depends_on"))
        problems.append(f"{where}: depends_on: dependency cycle {' -> '.join(cycle)}")
    if not problems:  # the groups' rules assume every name resolves
        problems += _group_problems(topology, source)
    if problems:
        raise TopologyError(join_problems(problems))


def _group_problems(topology: Topology, source: SourceMap) -> list[str]:
    """A group starts as one step: none of its services may wait for another of it, Toxiproxy
    (which starts first, alone) is in none, and groups may not depend on each other in a
    circle."""
    problems = []
    proxy = topology.toxiproxy_service()
    for name, service in topology.services.items():
        if service.group is None:
            continue
        if name == proxy:
            where = source.where(("services", name, "group"))
            problems.append(
                f"{where}: services.{name}.group: the toxiproxy service starts first, on its "
                "own, and cannot be in a group"
            )
        for index, dependency in enumerate(service.depends_on):
            if topology.services[dependency].group == service.group:
                where = source.where(("services", name, "depends_on", index))
                problems.append(
                    f"{where}: services.{name}.depends_on: {dependency} is in the same group "
                    f"({service.group}) and starts together with {name}; a service cannot "
                    "wait for one of its own group"
                )
    steps = {_step_of(topology, name) for name in topology.services}
    cycle = _cycle(steps, lambda step: _step_dependencies(topology, step))
    if cycle:
        where = source.where(("services",))
        problems.append(f"{where}: group: the groups depend on each other: {' -> '.join(cycle)}")
    return problems


def _step_of(topology: Topology, name: str) -> str:
    """What starts `name`: its group, written `group:NAME`, or the service alone."""
    group = topology.services[name].group
    return name if group is None else f"group:{group}"


def _step_members(topology: Topology, step: str) -> list[str]:
    return [name for name in topology.services if _step_of(topology, name) == step]


def _step_dependencies(topology: Topology, step: str) -> list[str]:
    return [
        _step_of(topology, dependency)
        for name in _step_members(topology, step)
        for dependency in topology.services[name].depends_on
        if _step_of(topology, dependency) != step
    ]


def _cycle(nodes: Iterable[str], edges: Callable[[str], list[str]]) -> list[str]:
    """A circle of `edges` among `nodes` (the first found, closed), or [] when there is none;
    an edge to a node not among them is someone else's error."""
    known = set(nodes)
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done or node not in known:
            return []
        visiting.append(node)
        for target in edges(node):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return []

    for node in sorted(known):
        cycle = visit(node)
        if cycle:
            return cycle
    return []


def start_steps(topology: Topology) -> list[list[str]]:
    """The services in the steps they start in, each step's dependencies in earlier ones:
    Toxiproxy alone first, then one service, or every service of one `group` together (the
    loader has refused a group that waits for itself)."""
    steps: list[list[str]] = []
    placed: set[str] = set()
    proxy = topology.toxiproxy_service()
    if proxy:
        steps.append([proxy])
        placed.add(proxy)

    def add(name: str) -> None:
        if name in placed:
            return
        step = _step_members(topology, _step_of(topology, name))
        placed.update(step)
        for member in step:
            for dependency in topology.services[member].depends_on:
                add(dependency)
        steps.append(step)

    for name in topology.services:
        add(name)
    return steps


def start_order(topology: Topology) -> list[str]:
    """Services in an order that starts every dependency first (toxiproxy before all)."""
    return [name for step in start_steps(topology) for name in step]
