"""The topology file: which services make up the system under test and how they connect.

Values may reference other parts of the topology with `${...}` placeholders; those are resolved
by `harness.topology.plan` once ports are allocated. See targets/README.md for the format and
the range of every value ("Limits").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from harness.excerpt import excerpt
from harness.paths import TOPOLOGY_NAME_PATTERN
from harness.validation import StrictModel

# Service names become folders (services/<name>) and log files: at most 63 characters.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
HOUR_S = 3600
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Label = Annotated[str, Field(min_length=1, max_length=63)]


def _check_name(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(
            f"{what} {excerpt(value)} must start with a lowercase letter and use only a-z, 0-9 "
            "and '-' (at most 63 characters)"
        )
    return value


def _no_nul(value: str, what: str) -> str:
    # The file reader refuses control characters; this holds for topologies built in code too.
    if "\0" in value:
        raise ValueError(f"{what} {excerpt(value)} contains a NUL byte")
    return value


class HealthCheck(StrictModel):
    """How to tell a service is ready: exactly one of `http` (a 2xx GET), `tcp` (a connect)
    or `command` (an argument list run on the harness's machine, never through a shell; exit
    status 0 is healthy)."""

    http: Url | None = None
    tcp: Annotated[str, Field(min_length=1, max_length=300)] | None = Field(
        default=None, description="host:port, e.g. ${self.address.NAME}"
    )
    command: list[Annotated[str, Field(max_length=65_536)]] | None = Field(
        default=None, min_length=1, max_length=1000, description="healthy when it exits 0"
    )
    timeout_s: float = Field(default=60.0, gt=0, le=HOUR_S, description="deadline to be healthy")
    interval_ms: int = Field(default=50, gt=0, le=5000)

    @model_validator(mode="after")
    def _exactly_one_probe(self) -> HealthCheck:
        given = [probe for probe in (self.http, self.tcp, self.command) if probe is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'http' (a URL), 'tcp' (host:port) or 'command' (an "
                "argument list)"
            )
        for argument in self.command or []:
            _no_nul(argument, "argument")
        return self


class StatusField(StrictModel):
    """Where one value sits in a member's status answer, and how its raw values read.

    `path`: for JSON, keys (and list indexes) joined by '.', e.g. `meta_cluster.leader`; for
    Prometheus text, a sample selector, e.g. `raft_is_leader{group="meta"}`. `map`: raw value
    (as text: `true`, `1`, `LEADER`) to the value the harness uses; a raw value not in a given
    map is read as is."""

    path: Annotated[str, Field(min_length=1, max_length=500)]
    map: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=100
    )


def _field(path: str) -> StatusField:
    return StatusField(path=path)


class RaftStatus(StrictModel):
    """How to read a Raft member's role, term and leader: see targets/README.md ("Status").

    Exactly one source: `url` (HTTP GET, or POST with `body`) or `command` (an argument list run
    once per poll, never through a shell; its standard output is the answer). The answer is
    JSON or Prometheus text (`format`); `role`, `term` and `leader` say where each value is.
    The leader may be a service name or the member id the system uses: ids are mapped to
    services through each member's `member_id`, or learned from `id` in the members' own
    answers."""

    url: Url | None = None
    method: Literal["GET", "POST"] = "GET"
    body: Annotated[str, Field(max_length=65_536)] | None = None
    headers: dict[Label, Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=50
    )
    command: list[Annotated[str, Field(max_length=65_536)]] | None = Field(
        default=None, min_length=1, max_length=1000
    )
    format: Literal["json", "prometheus"] = "json"
    cluster: Label = Field(default="engine", description="members of one cluster share this name")
    role: StatusField = Field(default_factory=lambda: _field("role"))
    term: StatusField | None = Field(default_factory=lambda: _field("term"))
    leader: StatusField | None = Field(default_factory=lambda: _field("leader"))
    id: StatusField | None = Field(
        default=None, description="where the member's answer gives its own id (to learn ids)"
    )
    member_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="this member's id as the system names it"
    )
    interval_ms: float = Field(
        default=5.0, ge=1, le=10_000, description="poll period between elections"
    )
    timeout_ms: float = Field(default=250.0, gt=0, le=60_000)
    election_max_ms: float = Field(
        default=3000.0,
        gt=0,
        le=120_000,
        description="how long an election may take: the probe polls fast for that long",
    )

    @model_validator(mode="after")
    def _one_source(self) -> RaftStatus:
        if (self.url is None) == (self.command is None):
            raise ValueError("give exactly one of 'url' (HTTP) or 'command' (an argument list)")
        if self.command is not None and (self.body is not None or self.headers):
            raise ValueError("'body' and 'headers' go with 'url', not with 'command'")
        if self.body is not None and self.method != "POST":
            raise ValueError("a 'body' needs method: POST")
        for name, value in self.headers.items():
            # A CR or LF would smuggle another header (or request) onto the connection.
            if any(c in name + value for c in "\r\n") or ":" in name:
                raise ValueError(f"header {excerpt(name)}: no CR, LF or ':' in it")
        return self


# repository[:tag] or an image id, as Docker spells them; never an option or a path.
ImageName = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9._/:@-]{0,254}$", description="a Docker image reference")
]


class Service(StrictModel):
    role: Label = Field(default="service", description="free-form role used by selectors")
    kind: Literal["process", "job"] = Field(
        default="process", description="job: runs to completion before its dependents start"
    )
    host: str = Field(default="127.0.0.1", description="loopback address the service binds")
    ports: list[str] = Field(
        default_factory=list, max_length=64, description="named ports, allocated free"
    )
    command: list[Annotated[str, Field(max_length=65_536)]] = Field(min_length=1, max_length=1000)
    env: dict[str, Annotated[str, Field(max_length=65_536)]] = Field(
        default_factory=dict, max_length=1000
    )
    depends_on: list[str] = Field(default_factory=list, max_length=256)
    group: Label | None = Field(
        default=None,
        description="services of one group start together and are then waited healthy "
        "together (a quorum's members, which may answer only once enough of them run)",
    )
    health: HealthCheck | None = None
    raft: RaftStatus | None = None
    stop_timeout_s: float = Field(default=10.0, gt=0, le=HOUR_S)
    job_timeout_s: float = Field(default=120.0, gt=0, le=HOUR_S)
    clock_control: bool = Field(
        default=False, description="preload libfaketime so scenarios may skew this clock"
    )
    image: ImageName | None = Field(
        default=None,
        description="container backends: run this existing image (the command runs in it)",
    )
    build: Label | None = Field(
        default=None,
        description="container backends: the harness's own image build to run (`hftchaos "
        "images build`); ignored by the local backend",
    )

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{excerpt(value)} is not an IP address") from None
        if not address.is_loopback:
            raise ValueError(f"{value} is not a loopback address (use 127.0.0.0/8 or ::1)")
        return value

    @field_validator("command")
    @classmethod
    def _command_arguments(cls, value: list[str]) -> list[str]:
        for argument in value:
            _no_nul(argument, "argument")
        return value

    @field_validator("env")
    @classmethod
    def _environment(cls, value: dict[str, str]) -> dict[str, str]:
        # exec refuses a NUL; a '=' in a name would silently set a different variable.
        for name, setting in value.items():
            if not name or "=" in name or "\0" in name:
                raise ValueError(
                    f"variable name {excerpt(name)} must be non-empty, without '=' or NUL"
                )
            _no_nul(setting, f"the value of {name}")
        return value

    @field_validator("ports")
    @classmethod
    def _port_names(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_name(name, "port name")
        if len(set(value)) != len(value):
            raise ValueError("port names must be unique")
        return value


class Link(StrictModel):
    """A connection routed through a Toxiproxy proxy, so faults can act on it alone."""

    source: Label = Field(alias="from", description="the client service")
    target: Label = Field(alias="to", description="the server service")
    port: Label = Field(description="the named port of the target the proxy forwards to")


class Topology(StrictModel):
    name: str
    description: str = Field(default="", max_length=10_000)
    services: dict[str, Service] = Field(min_length=1, max_length=256)
    links: dict[str, Link] = Field(default_factory=dict, max_length=1000)
    backend: str | None = Field(
        default=None, max_length=40, description="where it runs: local (the default)"
    )
    network: Literal["host", "namespaces"] = Field(
        default="host",
        description="local backend: `namespaces` runs each service in a network namespace of "
        "its own on a bridge the run makes, so kernel faults act whatever address its "
        "sockets use (root)",
    )
    target: str | None = Field(
        default=None,
        max_length=200,
        description="its safety checks: package.module:NAME (targets/README.md)",
    )

    @field_validator("name")
    @classmethod
    def _topology_name(cls, value: str) -> str:
        # The name becomes a folder under the cache (`hftchaos up`): an identifier, never a path.
        if not TOPOLOGY_NAME_PATTERN.match(value):
            raise ValueError(
                f"{excerpt(value)} must start with a lowercase letter and use only a-z, 0-9 "
                "and '-' (at most 63 characters)"
            )
        return value

    @field_validator("services", "links")
    @classmethod
    def _names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            _check_name(name, "name")
        return value

    def toxiproxy_service(self) -> str | None:
        for name, service in self.services.items():
            if service.role == "toxiproxy" and "api" in service.ports:
                return name
        return None

    def services_with_role(self, role: str) -> list[str]:
        return [name for name, service in self.services.items() if service.role == role]

    def raft_clusters(self) -> list[str]:
        return list(dict.fromkeys(s.raft.cluster for s in self.services.values() if s.raft))

    def chosen_by(self, role: str, cluster: str | None, role_given: bool) -> list[str]:
        """What a scenario's selector chooses from: a Raft cluster's members (of `role`, when
        the selector names one too), else the services of `role`."""
        if cluster is None:
            return self.services_with_role(role)
        return [
            name
            for name, service in self.services.items()
            if service.raft is not None
            and service.raft.cluster == cluster
            and (not role_given or service.role == role)
        ]

    def with_clock_control(self, names: Iterable[str]) -> Topology:
        """A copy in which these services are started with libfaketime preloaded."""
        chosen = set(names)
        services = {
            name: service.model_copy(update={"clock_control": True}) if name in chosen else service
            for name, service in self.services.items()
        }
        return self.model_copy(update={"services": services})
