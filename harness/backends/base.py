"""What every backend (local processes, Docker) must do, and the optional abilities beside it.

A backend runs the services of one planned topology. Optional abilities (clock control,
leader lookup, network control) are separate protocols: a scenario that needs one checks for
it up front instead of failing halfway through a run.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from harness.topology.plan import Plan

if TYPE_CHECKING:  # faults.base imports this module; the protocol only names the type
    from harness.faults.base import ActiveFault
    from harness.faults.netfilter import CountedRule


class ServiceState(enum.Enum):
    NOT_STARTED = "not started"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    EXITED = "exited"  # ended on its own (a crash for a process, success or failure for a job)


@dataclass(frozen=True)
class ServiceFacts:
    """Run-time facts about one service, as the backend sees them now."""

    name: str
    role: str
    state: ServiceState
    host: str
    ports: dict[str, int]
    log_file: Path
    pid: int | None = None
    container_id: str | None = None
    exit_code: int | None = None


@runtime_checkable
class Backend(Protocol):
    plan: Plan

    def up(self) -> None:
        """Start every service in dependency order and wait until each is healthy."""

    def start(self, name: str) -> None: ...

    def stop(self, name: str) -> None:
        """Graceful stop: SIGTERM, then SIGKILL after the service's stop timeout."""

    def kill(self, name: str) -> None:
        """SIGKILL, no chance to clean up."""

    def pause(self, name: str) -> None:
        """Freeze every process of the service (SIGSTOP), like a long GC pause."""

    def resume(self, name: str) -> None: ...

    def restart(self, name: str) -> None:
        """Graceful stop, start, and wait until healthy."""

    def wait_healthy(self, name: str, timeout_s: float | None = None) -> None: ...

    def facts(self, name: str) -> ServiceFacts: ...

    def teardown(self) -> None:
        """Stop everything this backend started; safe to call more than once."""


@runtime_checkable
class ClockControl(Protocol):
    def set_clock_offset(self, name: str, offset_ms: float) -> None:
        """Step the service's wall clock by `offset_ms` from true time (0 heals)."""


@runtime_checkable
class NetworkControl(Protocol):
    """Kernel-level faults applied in a service's own network context: the host's loopback
    for local processes, the container's network namespace on Docker. Every rule is tagged
    with the run id and fault key, and the returned fault's heal removes exactly its rules."""

    def drop_packets(self, run_id: str, key: str | int, name: str, percent: float) -> ActiveFault:
        """Drop `percent` % of the packets to, and of the packets from, service `name`."""

    def partition(self, run_id: str, key: str | int, groups: list[list[str]]) -> ActiveFault:
        """Drop every packet between services of different groups."""

    def rule_counters(self, tag: str) -> list[CountedRule]:
        """The rules carrying `tag` now, wherever this backend puts them, with what each has
        matched so far (the effect check of kernel faults)."""


@runtime_checkable
class NetworkWarmUp(Protocol):
    """Beside NetworkControl: make ready for kernel faults before the first is due (the local
    and Docker backends start a kept-open iptables-restore in each network context), so the
    first fault of a run acts as fast as the others."""

    def prepare_network_faults(self) -> None:
        """Called once after bring-up by a run with kernel network faults."""


@runtime_checkable
class SocketTable(Protocol):
    """The kernel's TCP sockets where a service's own sockets live: the host's for local
    processes, the container's network namespace on Docker (entered from the host, network
    namespace only, so /proc stays the host's and `ss -p` names the pids `facts` gives)."""

    def established_sockets(self, name: str, selector: Sequence[str]) -> str | None:
        """`ss -Htinp state established <selector>` there; None when it cannot be read."""

    def network_address(self, name: str) -> str:
        """The address service `name`'s sockets carry, as its peers see it."""


@runtime_checkable
class LogAccess(Protocol):
    """A service's output and files, wherever it runs (checks and replay read through this)."""

    def read_log(self, name: str) -> str:
        """Everything the service wrote to stdout and stderr so far."""

    def read_file(self, name: str, relative: str) -> bytes:
        """A file under the service's own directory (`${self.dir}`)."""


@runtime_checkable
class ResourceStats(Protocol):
    def cpu_seconds(self, name: str) -> float | None:
        """CPU time (user + system) the service has used, or None when it is not running."""


@dataclass(frozen=True)
class BackendDescription:
    name: str
    engine_version: str | None
    images: dict[str, str]  # service -> image id
    warnings: tuple[str, ...] = ()  # what about the backend may distort the run's figures


@runtime_checkable
class Describes(Protocol):
    def describe(self) -> BackendDescription:
        """What the run's summary and report say about where the services ran."""


class RaftRole(enum.Enum):
    LEADER = "leader"
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class RaftView:
    """One member's own report of its Raft state."""

    node: str
    role: RaftRole
    term: int | None = None
    leader: str | None = None
    commit_index: int | None = None


@runtime_checkable
class LeaderLookup(Protocol):
    def raft_views(self) -> dict[str, RaftView]: ...

    def leader(self) -> str | None:
        """The node that claims leadership with the highest term, or None."""
