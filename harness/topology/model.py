"""The topology file: which services make up the system under test and how they connect.

Values may reference other parts of the topology with `${...}` placeholders; those are resolved
by `harness.topology.plan` once ports are allocated. See targets/README.md for the format.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from harness.paths import TOPOLOGY_NAME_PATTERN
from harness.validation import StrictModel

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")


def _check_name(value: str, what: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(
            f"{what} {value!r} must start with a lowercase letter and use only a-z, 0-9 and '-'"
        )
    return value


class HealthCheck(StrictModel):
    """How to tell a service is ready: exactly one of `http` (a 2xx GET) or `tcp` (a connect)."""

    http: str | None = None
    tcp: str | None = None
    timeout_s: float = Field(default=60.0, gt=0, description="deadline to become healthy")
    interval_ms: int = Field(default=50, gt=0, le=5000)

    @model_validator(mode="after")
    def _exactly_one_probe(self) -> HealthCheck:
        if (self.http is None) == (self.tcp is None):
            raise ValueError("give exactly one of 'http' (a URL) or 'tcp' (host:port)")
        return self


class RaftStatus(StrictModel):
    """Where a Raft member reports its role; the JSON must have `role`, `term` and `leader`."""

    url: str
    cluster: str = Field(default="engine", description="members of one cluster share this name")


class Service(StrictModel):
    role: str = Field(default="service", description="free-form role used by selectors")
    kind: Literal["process", "job"] = Field(
        default="process", description="job: runs to completion before its dependents start"
    )
    host: str = Field(default="127.0.0.1", description="loopback address the service binds")
    ports: list[str] = Field(default_factory=list, description="named ports, allocated free")
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    health: HealthCheck | None = None
    raft: RaftStatus | None = None
    stop_timeout_s: float = Field(default=10.0, gt=0)
    job_timeout_s: float = Field(default=120.0, gt=0)
    clock_control: bool = Field(
        default=False, description="preload libfaketime so scenarios may skew this clock"
    )

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if not address.is_loopback:
            raise ValueError(f"{value} is not a loopback address (use 127.0.0.0/8 or ::1)")
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

    source: str = Field(alias="from", description="the client service")
    target: str = Field(alias="to", description="the server service")
    port: str = Field(description="the named port of the target the proxy forwards to")


class Topology(StrictModel):
    name: str
    description: str = ""
    services: dict[str, Service] = Field(min_length=1)
    links: dict[str, Link] = Field(default_factory=dict)
    target: str | None = Field(
        default=None, description="its safety checks: package.module:NAME (targets/README.md)"
    )

    @field_validator("name")
    @classmethod
    def _topology_name(cls, value: str) -> str:
        # The name becomes a folder under the cache (`hftchaos up`): an identifier, never a path.
        if not TOPOLOGY_NAME_PATTERN.match(value):
            raise ValueError(
                f"{value[:80]!r} must start with a lowercase letter and use only a-z, 0-9 "
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

    def with_clock_control(self, names: Iterable[str]) -> Topology:
        """A copy in which these services are started with libfaketime preloaded."""
        chosen = set(names)
        services = {
            name: service.model_copy(update={"clock_control": True}) if name in chosen else service
            for name, service in self.services.items()
        }
        return self.model_copy(update={"services": services})
