"""Turn a topology into a concrete plan: free ports chosen, every `${...}` placeholder resolved.

Placeholders (see targets/README.md):
    ${python}  ${run_dir}  ${topology.dir}
    ${toolchain.home|toxiproxy_server|kafka_libs|libfaketime|java}
    ${self.host}  ${self.dir}  ${self.port.NAME}  ${self.address.NAME}
    ${services.SVC.host}  ${services.SVC.port.NAME}  ${services.SVC.address.NAME}
    ${links.LINK.host}  ${links.LINK.port}  ${links.LINK.address}
    ${self.harness.host}  ${self.harness.address.NAME}  (and ${services.SVC.harness...})

The plan is backend-neutral; a `Realization` says what it means on one backend. An address
has two sides: where other services reach a service (its `network_host`: the loopback address
locally, the service's name on a Docker network) and where the harness reaches it (`host`:
the same locally, 127.0.0.1 where Docker publishes its ports). In a command or env value
`host`/`address` mean the network side; in a health check or Raft status URL, which the
harness itself calls, the harness side. The host-path placeholders (${python}, ${run_dir},
${self.dir}, ${toolchain.*}) belong to the realization: the local one gives paths on this
machine, Docker's gives paths inside the images.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BackendError, TopologyError
from harness.excerpt import excerpt
from harness.netaddr import url_address, url_host
from harness.toolchain import Toolchain, cache_home
from harness.topology.loader import LoadedTopology, start_steps
from harness.topology.model import RaftStatus, Service
from harness.topology.network import NAMESPACES, NamespaceNetwork

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class PlannedHealth:
    http: str | None
    tcp: tuple[str, int] | None
    timeout_s: float
    interval_s: float
    command: list[str] | None = None  # run on the harness's machine; exit 0 is healthy


@dataclass(frozen=True)
class Realization:
    """What the backend-neutral parts of a topology mean on one backend."""

    backend: str
    python: str
    toolchain: dict[str, str]  # `${toolchain.KEY}` -> value
    run_dir: Callable[[Path], str | None]  # `${run_dir}`; None: not available there
    service_dir: Callable[[Path], str]  # host directory of a service -> its `${self.dir}`
    network_host: Callable[[str, str], str]  # (service, topology host) -> where peers reach it
    harness_host: Callable[[str, str], str]  # (service, topology host) -> where we reach it
    # Where a port is held until its service starts (None: `harness_host`).
    reserve_host: Callable[[str, str], str] | None = None


def _same_host(_name: str, host: str) -> str:
    return host


def namespace_realization(base: Realization, network: NamespaceNetwork) -> Realization:
    """Local processes, each in its own namespace: peers and the harness reach a service at
    its namespace's address. Its ports are held on the host's loopback: nothing else can bind
    in a namespace made for the run, and a number held there is still never given twice."""

    def in_namespace(name: str, _host: str) -> str:
        return network.address(name)

    def held_on_loopback(_name: str, _host: str) -> str:
        return "127.0.0.1"

    return dataclasses.replace(
        base,
        network_host=in_namespace,
        harness_host=in_namespace,
        reserve_host=held_on_loopback,
    )


def local_realization(toolchain: Toolchain) -> Realization:
    """Processes on this machine: host paths, and one loopback address seen from both sides."""
    return Realization(
        backend="local",
        python=sys.executable,
        toolchain={
            "toxiproxy_server": str(toolchain.toxiproxy_server),
            "kafka_libs": str(toolchain.kafka_libs),
            "libfaketime": str(toolchain.libfaketime),
            "java": str(toolchain.java),
        },
        run_dir=str,
        service_dir=str,
        network_host=_same_host,
        harness_host=_same_host,
    )


@dataclass(frozen=True)
class PlannedService:
    name: str
    role: str
    kind: str
    host: str  # where the harness reaches it
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
    network_host: str = ""  # where other services reach it ("" = `host`)
    image: str | None = None  # a prebuilt image to run (container backends)
    build: str | None = None  # one of the harness's image builds (harness/images/)
    # The whole `raft:` block with its placeholders resolved (status adapters read it).
    raft: RaftStatus | None = None

    def address(self, port: str) -> str:
        """Where the harness reaches the port."""
        return f"{self.host}:{self.ports[port]}"

    @property
    def peer_host(self) -> str:
        return self.network_host or self.host


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
    # Every service in the steps it starts in, dependencies first; a `group` is one step,
    # started as one and then waited healthy as one.
    start_steps: list[list[str]]
    toxiproxy: str | None
    toolchain: Toolchain
    all_ports: list[tuple[str, int]] = field(default_factory=list)
    backend: str = "local"  # the realization the plan was made for
    network: NamespaceNetwork | None = None  # `network: namespaces`: what the backend makes
    # Not data: the bound sockets that keep the ports free until each service starts.
    reservations: PortReservations = field(
        default_factory=lambda: PortReservations(), compare=False, repr=False
    )

    @property
    def order(self) -> list[str]:
        """Every service, dependencies first (teardown goes the other way)."""
        return [name for step in self.start_steps for name in step]

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


class PortReservations:
    """The probe sockets that hold a plan's ports, kept bound until the backend starts the
    service (or creates the link) each belongs to. Closing them when the plan is made left a
    window (seconds, while Kafka came up) in which another program took a port: seen in CI as
    "cannot bind the Raft address 127.0.0.11:13196"."""

    def __init__(self) -> None:
        self._held: dict[str, list[socket.socket]] = {}

    def hold(self, owner: str, probe: socket.socket) -> None:
        self._held.setdefault(owner, []).append(probe)

    def release(self, owner: str) -> None:
        """Free `owner`'s ports just before it binds them; a no-op once released."""
        for probe in self._held.pop(owner, []):
            probe.close()

    def release_all(self) -> None:
        for owner in list(self._held):
            self.release(owner)

    def holding(self) -> list[str]:
        return sorted(self._held)


def service_owner(name: str) -> str:
    return f"service:{name}"


def link_owner(name: str) -> str:
    return f"link:{name}"


def allocate_ports(requests: list[str]) -> list[int]:
    """Free TCP ports, one per requested host; the caller binds them soon after."""
    reservations = PortReservations()
    try:
        return reserve_ports([(host, "") for host in requests], reservations)
    finally:
        reservations.release_all()


def reserve_ports(requests: list[tuple[str, str]], reservations: PortReservations) -> list[int]:
    """One free TCP port per (host, owner), below the ephemeral range, held bound in
    `reservations` under its owner. No number is handed out twice, not even on two hosts: a
    service that binds the wildcard address would otherwise collide with another host's port."""
    ceiling = ephemeral_port_floor()
    floor = min(SERVICE_PORTS_FLOOR, max(1024, ceiling - 2000))
    candidates = list(range(floor, ceiling))
    random.SystemRandom().shuffle(candidates)
    ports = []
    try:
        for host, owner in requests:
            ports.append(_reserve_one(host, owner, candidates, reservations, (floor, ceiling)))
    except BaseException:
        reservations.release_all()
        raise
    return ports


def _reserve_one(
    host: str,
    owner: str,
    candidates: list[int],
    reservations: PortReservations,
    bounds: tuple[int, int],
) -> int:
    family = _family(host)  # an IPv4 socket cannot bind ::1, nor any candidate
    while candidates:
        port = candidates.pop()  # popped for good: every number is used at most once
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.bind((host, port))
        except OSError:
            probe.close()  # only the sockets holding a port stay open
            continue
        reservations.hold(owner, probe)
        return port
    raise BackendError(f"no free TCP port left in {bounds[0]}-{bounds[1] - 1}")


def _port_requests(
    loaded: LoadedTopology, realization: Realization
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(owner kind, owner, port name) and the host it is reserved on, in allocation order:
    the harness side, where the port is bound on this machine (by the service itself, or by
    Docker publishing it)."""
    topology = loaded.topology
    proxy_name = topology.toxiproxy_service()
    held_on = realization.reserve_host or realization.harness_host
    proxy_host = (
        held_on(proxy_name, topology.services[proxy_name].host) if proxy_name else "127.0.0.1"
    )
    wanted: list[tuple[str, str, str]] = []
    hosts: list[str] = []
    for name, service in topology.services.items():
        for port in service.ports:
            wanted.append(("service", name, port))
            hosts.append(held_on(name, service.host))
    for name in topology.links:
        wanted.append(("link", name, ""))
        hosts.append(proxy_host)
    return wanted, hosts


def make_plan(
    loaded: LoadedTopology,
    run_dir: Path,
    toolchain: Toolchain,
    realization: Realization | None = None,
) -> Plan:
    """The plan with its ports reserved: the backend releases each service's ports just
    before it starts that service (`Plan.reservations`). Without a realization: local."""
    realization = realization or local_realization(toolchain)
    network = None
    if realization.backend == "local" and loaded.topology.network == NAMESPACES:
        from harness.backends.local.namespaces import allocate

        network = allocate(list(loaded.topology.services))
        realization = namespace_realization(realization, network)
    wanted, hosts = _port_requests(loaded, realization)
    reservations = PortReservations()
    owners = [
        service_owner(owner) if kind == "service" else link_owner(owner)
        for kind, owner, _port in wanted
    ]
    ports = reserve_ports(list(zip(hosts, owners, strict=True)), reservations)
    plan = _plan_with_ports(loaded, run_dir, toolchain, realization, (wanted, hosts, ports))
    return dataclasses.replace(plan, reservations=reservations, network=network)


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
    realization = local_realization(_STAND_IN_TOOLCHAIN)
    wanted, hosts = _port_requests(loaded, realization)
    stand_in_ports = [SERVICE_PORTS_FLOOR + index for index in range(len(hosts))]
    _plan_with_ports(
        loaded, _STAND_IN_DIR, _STAND_IN_TOOLCHAIN, realization, (wanted, hosts, stand_in_ports)
    )


def _plan_with_ports(
    loaded: LoadedTopology,
    run_dir: Path,
    toolchain: Toolchain,
    realization: Realization,
    allocation: tuple[list[tuple[str, str, str]], list[str], list[int]],
) -> Plan:
    wanted, hosts, allocated = allocation
    topology = loaded.topology
    proxy_name = topology.toxiproxy_service()
    network_hosts = {
        name: realization.network_host(name, service.host)
        for name, service in topology.services.items()
    }
    proxy_host = network_hosts[proxy_name] if proxy_name else "127.0.0.1"

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
            upstream=(network_hosts[link.target], service_ports[link.target][link.port]),
        )
        for name, link in topology.links.items()
    }
    resolver = _Resolver(loaded, run_dir, realization, service_ports, links)
    services = {
        name: resolver.service(name, service) for name, service in topology.services.items()
    }
    return Plan(
        topology_name=topology.name,
        run_dir=run_dir,
        services=services,
        links=links,
        start_steps=start_steps(topology),
        toxiproxy=proxy_name,
        toolchain=toolchain,
        all_ports=list(zip(hosts, allocated, strict=True)),
        backend=realization.backend,
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


NETWORK_VIEW = "network"  # a command or env value: what another service would dial
HARNESS_VIEW = "harness"  # a health check or status URL: what the harness dials


def _as_in_url(expression: str, value: str) -> str:
    parts = expression.split(".")
    if "address" in parts:
        return url_address(value)
    return url_host(value) if parts[-1] == "host" else value


@dataclass
class _Resolver:
    loaded: LoadedTopology
    run_dir: Path
    realization: Realization
    ports: dict[str, dict[str, int]]
    links: dict[str, PlannedLink]

    def service(self, name: str, service: Service) -> PlannedService:
        directory = self.run_dir / "services" / name

        def resolve(
            text: str, *path: str | int, view: str = NETWORK_VIEW, url: bool = False
        ) -> str:
            return self.resolve(text, name, ("services", name, *path), view, url)

        health = None
        if service.health:
            tcp = None
            if service.health.tcp:
                tcp = self._host_and_port(
                    resolve(service.health.tcp, "health", "tcp", view=HARNESS_VIEW), name
                )
            http = service.health.http
            command = service.health.command
            health = PlannedHealth(
                http=resolve(http, "health", "http", view=HARNESS_VIEW, url=True) if http else None,
                tcp=tcp,
                timeout_s=service.health.timeout_s,
                interval_s=service.health.interval_ms / 1000,
                command=None
                if command is None
                else [
                    resolve(part, "health", "command", i, view=HARNESS_VIEW)
                    for i, part in enumerate(command)
                ],
            )
        raft_url = service.raft.url if service.raft else None
        return PlannedService(
            name=name,
            role=service.role,
            kind=service.kind,
            host=self.realization.harness_host(name, service.host),
            network_host=self.realization.network_host(name, service.host),
            ports=dict(self.ports[name]),
            command=[resolve(part, "command", i) for i, part in enumerate(service.command)],
            env={key: resolve(value, "env", key) for key, value in service.env.items()},
            directory=directory,
            log_file=self.run_dir / "logs" / f"{name}.log",
            health=health,
            raft_status_url=resolve(raft_url, "raft", "url", view=HARNESS_VIEW, url=True)
            if raft_url
            else None,
            raft_cluster=service.raft.cluster if service.raft else None,
            stop_timeout_s=service.stop_timeout_s,
            job_timeout_s=service.job_timeout_s,
            clock_control=service.clock_control,
            image=service.image,
            build=service.build,
            raft=self._raft(name, service.raft, resolve) if service.raft else None,
        )

    def _raft(self, name: str, raft: RaftStatus, resolve: Resolve) -> RaftStatus:
        """The raft block with every placeholder resolved (url, body, headers, command, id)."""

        def optional(text: str | None, *path: str) -> str | None:
            return None if text is None else resolve(text, "raft", *path, view=HARNESS_VIEW)

        return raft.model_copy(
            update={
                "url": None
                if raft.url is None
                else resolve(raft.url, "raft", "url", view=HARNESS_VIEW, url=True),
                "body": optional(raft.body, "body"),
                "headers": {
                    k: resolve(v, "raft", "headers", k, view=HARNESS_VIEW)
                    for k, v in raft.headers.items()
                },
                "command": None
                if raft.command is None
                else [
                    resolve(part, "raft", "command", i, view=HARNESS_VIEW)
                    for i, part in enumerate(raft.command)
                ],
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

    def resolve(
        self, text: str, owner: str, path: tuple[str | int, ...], view: str, url: bool = False
    ) -> str:
        """`text` with its placeholders resolved; in a URL (`url`), an IPv6 host or address
        is bracketed (`http://[::1]:8080/`), as the URL needs and a command line must not."""

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1).strip()
            value = self.lookup(expression, owner, view)
            if value is None:
                raise TopologyError(
                    f"{self.loaded.source.where(path)}: {'.'.join(map(str, path))}: "
                    f"unknown placeholder {excerpt('${' + match.group(1) + '}')} on the "
                    f"{self.realization.backend} backend; see targets/README.md"
                )
            bracketed = text[match.start() - 1 : match.start()] == "[" and (
                text[match.end() : match.end() + 1] == "]"
            )  # written `[${self.host}]` by hand: already what the URL needs
            return _as_in_url(expression, value) if url and not bracketed else value

        return PLACEHOLDER.sub(replace, text)

    def lookup(self, expression: str, owner: str, view: str) -> str | None:
        parts = expression.split(".")
        if expression == "topology.dir":  # scripts and configs next to the topology file
            return str(self.loaded.file.resolve().parent)
        if expression == "toolchain.home":  # the cache `hftchaos setup --example NAME` fills
            return str(cache_home())
        if expression == "python":
            return self.realization.python
        if expression == "run_dir":
            return self.realization.run_dir(self.run_dir)
        if parts[0] == "toolchain" and len(parts) == 2:
            return self.realization.toolchain.get(parts[1])
        if parts[0] == "self":
            parts = ["services", owner, *parts[1:]]
        if parts[0] == "services" and len(parts) >= 3:
            if parts[2] == HARNESS_VIEW:
                return self._service_value(parts[1], parts[3:], HARNESS_VIEW)
            return self._service_value(parts[1], parts[2:], view)
        if parts[0] == "links" and len(parts) == 3 and parts[1] in self.links:
            link = self.links[parts[1]]
            return {
                "host": link.listen[0],
                "port": str(link.listen[1]),
                "address": link.listen_address,
            }.get(parts[2])
        return None

    def _service_value(self, name: str, rest: list[str], view: str) -> str | None:
        service = self.loaded.topology.services.get(name)
        if service is None:
            return None
        side = (
            self.realization.harness_host if view == HARNESS_VIEW else self.realization.network_host
        )
        host = side(name, service.host)
        if rest == ["host"]:
            return host
        if rest == ["dir"]:
            return self.realization.service_dir(self.run_dir / "services" / name)
        if len(rest) == 2 and rest[1] in self.ports[name]:
            port = self.ports[name][rest[1]]
            if rest[0] == "port":
                return str(port)
            if rest[0] == "address":
                return f"{host}:{port}"
        return None
