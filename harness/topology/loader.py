"""Read a topology file into a validated `Topology`, with errors that point at file:line."""

from __future__ import annotations

import os
import shutil
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
    cycle = _dependency_cycle(topology)
    if cycle:
        where = source.where(("services", cycle[0], "depends_on"))
        problems.append(f"{where}: depends_on: dependency cycle {' -> '.join(cycle)}")
    if problems:
        raise TopologyError(join_problems(problems))


def _dependency_cycle(topology: Topology) -> list[str]:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str]:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in done or name not in topology.services:
            return []
        visiting.append(name)
        for dependency in topology.services[name].depends_on:
            cycle = visit(dependency)
            if cycle:
                return cycle
        visiting.pop()
        done.add(name)
        return []

    for name in topology.services:
        cycle = visit(name)
        if cycle:
            return cycle
    return []


def start_order(topology: Topology) -> list[str]:
    """Services in an order that starts every dependency first (toxiproxy before all)."""
    order: list[str] = []
    proxy = topology.toxiproxy_service()
    if proxy:
        order.append(proxy)

    def add(name: str) -> None:
        if name in order:
            return
        for dependency in topology.services[name].depends_on:
            add(dependency)
        order.append(name)

    for name in topology.services:
        add(name)
    return order
