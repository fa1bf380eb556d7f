"""Turn a topology into a concrete plan: free ports chosen, every `${...}` placeholder resolved.

Placeholders (see targets/README.md):
    ${python}  ${run_dir}  ${topology.dir}
    ${toolchain.home|toxiproxy_server|kafka_libs|libfaketime|java}
    ${self.host}  ${self.dir}  ${self.port.NAME}  ${self.address.NAME}
    ${services.SVC.host}  ${services.SVC.port.NAME}  ${services.SVC.address.NAME}
    ${links.LINK.host}  ${links.LINK.port}  ${links.LINK.address}
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BackendError, TopologyError
from harness.excerpt import excerpt
from harness.toolchain import Toolchain, cache_home
from harness.topology.loader import LoadedTopology, start_order
from harness.topology.model import RaftStatus, Service

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class PlannedHealth:
    http: str | None
    tcp: tuple[str, int] | None
    timeout_s: float
    interval_s: float


@dataclass(frozen=True)
class PlannedService:
    name: str
    role: str
    kind: str
    host: str
    ports: dict[str, int]
    command: list[str]
    env: dict[str, str]
    directory: Path
    log_file: Path
    health: PlannedHealth | None
    raft_status_url: str | None
    raft_cluster: str | None
    stop_timeout_s: float
    job_timeout_s: float
    clock_control: bool
    # The whole `raft:` block with its placeholders resolved (status adapters read it).
    raft: RaftStatus | None = None

    def address(self, port: str) -> str:
        return f"{self.host}:{self.ports[port]}"


@dataclass(frozen=True)
class PlannedLink:
    name: str
    source: str
    target: str
    listen: tuple[str, int]
    upstream: tuple[str, int]

    @property
    def listen_address(self) -> str:
        return f"{self.listen[0]}:{self.listen[1]}"

    @property
    def upstream_address(self) -> str:
        return f"{self.upstream[0]}:{self.upstream[1]}"


@dataclass(frozen=True)
class Plan:
    topology_name: str
    run_dir: Path
    services: dict[str, PlannedService]
    links: dict[str, PlannedLink]
    order: list[str]
    toxiproxy: str | None
    toolchain: Toolchain
    all_ports: list[tuple[str, int]] = field(default_factory=list)

    def with_role(self, role: str) -> list[PlannedService]:
        return [service for service in self.services.values() if service.role == role]

    def raft_members(self, cluster: str = "engine") -> list[PlannedService]:
        return [s for s in self.services.values() if s.raft_cluster == cluster]

    def raft_clusters(self) -> list[str]:
        """The names of the topology's Raft clusters, in the order their members appear."""
        return list(dict.fromkeys(s.raft_cluster for s in self.services.values() if s.raft_cluster))


# Service ports come from below the kernel's ephemeral range: a port from inside it can be
# taken, between runs or while a killed service restarts, as the source port of some outgoing
# connection (engine nodes bind theirs to their own address), and the service then cannot
# bind. Seen in CI: "cannot bind the Raft address 127.0.0.13:60473" on a restart.
SERVICE_PORTS_FLOOR = 10000
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_port_floor() -> int:
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def allocate_ports(requests: list[str]) -> list[int]:
    """Free TCP ports, one per requested host, below the ephemeral range, held open together
    so none is handed out twice."""
    ceiling = ephemeral_port_floor()
    floor = min(SERVICE_PORTS_FLOOR, max(1024, ceiling - 2000))
    candidates = list(range(floor, ceiling))
    random.SystemRandom().shuffle(candidates)
    with ExitStack() as stack:
        ports = []
        for host in requests:
            family = _family(host)  # an IPv4 socket cannot bind ::1, nor any candidate
            while True:
                if not candidates:
                    raise BackendError(f"no free TCP port left in {floor}-{ceiling - 1}")
                port = candidates.pop()
                probe = socket.socket(family, socket.SOCK_STREAM)
                try:
                    probe.bind((host, port))
                except OSError:
                    probe.close()  # only the sockets holding a port stay open
                    continue
                stack.enter_context(probe)
                ports.append(port)
                break
        return ports


def _port_requests(loaded: LoadedTopology) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(owner kind, owner, port name) and its host, in allocation order."""
    topology = loaded.topology
    proxy_name = topology.toxiproxy_service()
    proxy_host = topology.services[proxy_name].host if proxy_name else "127.0.0.1"
    wanted: list[tuple[str, str, str]] = []
    hosts: list[str] = []
    for name, service in topology.services.items():
        for port in service.ports:
            wanted.append(("service", name, port))
            hosts.append(service.host)
    for name in topology.links:
        wanted.append(("link", name, ""))
        hosts.append(proxy_host)
    return wanted, hosts


def make_plan(loaded: LoadedTopology, run_dir: Path, toolchain: Toolchain) -> Plan:
    wanted, hosts = _port_requests(loaded)
    return _plan_with_ports(loaded, run_dir, toolchain, wanted, hosts, allocate_ports(hosts))


# Stand-ins for `check_plan`: what a placeholder resolves to matters there, not its value.
_STAND_IN_DIR = Path("/nonexistent/hftchaos-check")
_STAND_IN_TOOLCHAIN = Toolchain(
    toxiproxy_server=_STAND_IN_DIR / "toxiproxy-server",
    kafka_libs=_STAND_IN_DIR / "kafka-libs",
    libfaketime=_STAND_IN_DIR / "libfaketime.so.1",
    java=_STAND_IN_DIR / "java",
)


def check_plan(loaded: LoadedTopology) -> None:
    """Resolve every placeholder and health address as `make_plan` would, with stand-in ports
    and nothing opened or created, so `validate` finds what would otherwise fail at `up`."""
    wanted, hosts = _port_requests(loaded)
    stand_in_ports = [SERVICE_PORTS_FLOOR + index for index in range(len(hosts))]
    _plan_with_ports(loaded, _STAND_IN_DIR, _STAND_IN_TOOLCHAIN, wanted, hosts, stand_in_ports)


def _plan_with_ports(
    loaded: LoadedTopology,
    run_dir: Path,
    toolchain: Toolchain,
    wanted: list[tuple[str, str, str]],
    hosts: list[str],
    allocated: list[int],
) -> Plan:
    topology = loaded.topology
    proxy_name = topology.toxiproxy_service()
    proxy_host = topology.services[proxy_name].host if proxy_name else "127.0.0.1"

    service_ports: dict[str, dict[str, int]] = {name: {} for name in topology.services}
    link_ports: dict[str, int] = {}
    for (kind, owner, port_name), number in zip(wanted, allocated, strict=True):
        if kind == "service":
            service_ports[owner][port_name] = number
        else:
            link_ports[owner] = number

    links = {
        name: PlannedLink(
            name=name,
            source=link.source,
            target=link.target,
            listen=(proxy_host, link_ports[name]),
            upstream=(topology.services[link.target].host, service_ports[link.target][link.port]),
        )
        for name, link in topology.links.items()
    }
    resolver = _Resolver(loaded, run_dir, toolchain, service_ports, links)
    services = {
        name: resolver.service(name, service) for name, service in topology.services.items()
    }
    return Plan(
        topology_name=topology.name,
        run_dir=run_dir,
        services=services,
        links=links,
        order=start_order(topology),
        toxiproxy=proxy_name,
        toolchain=toolchain,
        all_ports=list(zip(hosts, allocated, strict=True)),
    )


Resolve = Callable[..., str]  # (text, *path inside the service) -> text, placeholders resolved
HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")


def _is_host(text: str) -> bool:
    """An IP address (`::1` too: '${self.host}' alone splits into ':' and '1') or a name."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(HOST_NAME.match(text))
    return True


@dataclass
class _Resolver:
    loaded: LoadedTopology
    run_dir: Path
    toolchain: Toolchain
    ports: dict[str, dict[str, int]]
    links: dict[str, PlannedLink]

    def service(self, name: str, service: Service) -> PlannedService:
        directory = self.run_dir / "services" / name

        def resolve(text: str, *path: str | int) -> str:
            return self.resolve(text, name, directory, ("services", name, *path))

        health = None
        if service.health:
            tcp = None
            if service.health.tcp:
                tcp = self._host_and_port(resolve(service.health.tcp, "health", "tcp"), name)
            health = PlannedHealth(
                http=resolve(service.health.http, "health", "http")
                if service.health.http
                else None,
                tcp=tcp,
                timeout_s=service.health.timeout_s,
                interval_s=service.health.interval_ms / 1000,
            )
        return PlannedService(
            name=name,
            role=service.role,
            kind=service.kind,
            host=service.host,
            ports=dict(self.ports[name]),
            command=[resolve(part, "command", i) for i, part in enumerate(service.command)],
            env={key: resolve(value, "env", key) for key, value in service.env.items()},
            directory=directory,
            log_file=self.run_dir / "logs" / f"{name}.log",
            health=health,
            raft_status_url=resolve(service.raft.url, "raft", "url")
            if service.raft and service.raft.url
            else None,
            raft_cluster=service.raft.cluster if service.raft else None,
            stop_timeout_s=service.stop_timeout_s,
            job_timeout_s=service.job_timeout_s,
            clock_control=service.clock_control,
            raft=self._raft(name, service.raft, resolve) if service.raft else None,
        )

    def _raft(self, name: str, raft: RaftStatus, resolve: Resolve) -> RaftStatus:
        """The raft block with every placeholder resolved (url, body, headers, command, id)."""

        def optional(text: str | None, *path: str) -> str | None:
            return None if text is None else resolve(text, "raft", *path)

        return raft.model_copy(
            update={
                "url": optional(raft.url, "url"),
                "body": optional(raft.body, "body"),
                "headers": {k: resolve(v, "raft", "headers", k) for k, v in raft.headers.items()},
                "command": None
                if raft.command is None
                else [resolve(part, "raft", "command", i) for i, part in enumerate(raft.command)],
                "member_id": optional(raft.member_id, "member_id"),
            }
        )

    def _host_and_port(self, address: str, name: str) -> tuple[str, int]:
        host, _, port = address.rpartition(":")
        if _is_host(host) and port.isdigit() and 0 < int(port) < 65536:
            return host, int(port)
        path = ("services", name, "health", "tcp")
        raise TopologyError(
            f"{self.loaded.source.where(path)}: {'.'.join(path)}: {excerpt(address)} is not "
            "host:port; use ${self.address.NAME} or ${services.SVC.address.NAME}"
        )

    def resolve(self, text: str, owner: str, directory: Path, path: tuple[str | int, ...]) -> str:
        def replace(match: re.Match[str]) -> str:
            value = self.lookup(match.group(1).strip(), owner, directory)
            if value is None:
                raise TopologyError(
                    f"{self.loaded.source.where(path)}: {'.'.join(map(str, path))}: "
                    f"unknown placeholder {excerpt('${' + match.group(1) + '}')}; "
                    "see targets/README.md"
                )
            return value

        return PLACEHOLDER.sub(replace, text)

    def lookup(self, expression: str, owner: str, directory: Path) -> str | None:
        parts = expression.split(".")
        simple = {
            "python": sys.executable,
            "run_dir": str(self.run_dir),
            "toolchain.toxiproxy_server": str(self.toolchain.toxiproxy_server),
            "toolchain.kafka_libs": str(self.toolchain.kafka_libs),
            "toolchain.libfaketime": str(self.toolchain.libfaketime),
            "toolchain.java": str(self.toolchain.java),
            "self.dir": str(directory),
            # The topology file's folder: scripts and configs next to it, by absolute path.
            "topology.dir": str(self.loaded.file.resolve().parent),
            # The provisioned cache: `hftchaos setup --example NAME` builds into it.
            "toolchain.home": str(cache_home()),
        }
        if expression in simple:
            return simple[expression]
        if parts[0] == "self":
            parts = ["services", owner, *parts[1:]]
        if parts[0] == "services" and len(parts) >= 3:
            return self._service_value(parts[1], parts[2:])
        if parts[0] == "links" and len(parts) == 3 and parts[1] in self.links:
            link = self.links[parts[1]]
            return {
                "host": link.listen[0],
                "port": str(link.listen[1]),
                "address": link.listen_address,
            }.get(parts[2])
        return None

    def _service_value(self, name: str, rest: list[str]) -> str | None:
        service = self.loaded.topology.services.get(name)
        if service is None:
            return None
        if rest == ["host"]:
            return service.host
        if rest == ["dir"]:
            return str(self.run_dir / "services" / name)
        if len(rest) == 2 and rest[1] in self.ports[name]:
            port = self.ports[name][rest[1]]
            if rest[0] == "port":
                return str(port)
            if rest[0] == "address":
                return f"{service.host}:{port}"
        return None
