"""In-memory stand-ins for the backend and its abilities, for unit tests of pure logic.

They record what was asked of them; they run nothing. Never use them to test a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.base import RaftRole, RaftView, ServiceFacts, ServiceState
from harness.errors import BackendError
from harness.raft import leader_of
from harness.topology.plan import Plan

if TYPE_CHECKING:
    from harness.faults.base import ActiveFault
    from harness.faults.netfilter import CountedRule


@dataclass
class FakeBackend:
    plan: Plan
    calls: list[tuple[str, str]] = field(default_factory=list)
    states: dict[str, ServiceState] = field(default_factory=dict)

    def up(self) -> None:
        for name in self.plan.order:
            self.start(name)

    def start(self, name: str) -> None:
        self._record("start", name)
        self.states[name] = ServiceState.RUNNING

    def stop(self, name: str) -> None:
        self._record("stop", name)
        self.states[name] = ServiceState.STOPPED

    def kill(self, name: str) -> None:
        if self.states.get(name) is not ServiceState.RUNNING:
            raise BackendError(f"cannot kill {name}: it is not running")
        self._record("kill", name)
        self.states[name] = ServiceState.STOPPED

    def pause(self, name: str) -> None:
        self._record("pause", name)
        self.states[name] = ServiceState.PAUSED

    def resume(self, name: str) -> None:
        self._record("resume", name)
        self.states[name] = ServiceState.RUNNING

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def wait_healthy(self, name: str, timeout_s: float | None = None) -> None:
        self._record("wait_healthy", name)

    def facts(self, name: str) -> ServiceFacts:
        service = self.plan.services[name]
        return ServiceFacts(
            name=name,
            role=service.role,
            state=self.states.get(name, ServiceState.NOT_STARTED),
            host=service.host,
            ports=dict(service.ports),
            log_file=Path("/dev/null"),
        )

    def teardown(self) -> None:
        for name, state in list(self.states.items()):
            if state in (ServiceState.RUNNING, ServiceState.PAUSED):
                self.stop(name)
        self.plan.reservations.release_all()

    def _record(self, action: str, name: str) -> None:
        if name not in self.plan.services:
            raise BackendError(f"unknown service {name!r}")
        self.calls.append((action, name))


@dataclass
class FakeClockControl:
    offsets_ms: dict[str, float] = field(default_factory=dict)

    def set_clock_offset(self, name: str, offset_ms: float) -> None:
        self.offsets_ms[name] = offset_ms


@dataclass
class FakeLeaderLookup:
    """Scripted Raft views: set `views` to whatever the test needs the cluster to report."""

    views: dict[str, RaftView] = field(default_factory=dict)

    def elect(self, leader: str, term: int, members: list[str]) -> None:
        self.views = {
            member: RaftView(
                node=member,
                role=RaftRole.LEADER if member == leader else RaftRole.FOLLOWER,
                term=term,
                leader=leader,
            )
            for member in members
        }

    def raft_views(self) -> dict[str, RaftView]:
        return dict(self.views)

    def leader(self) -> str | None:
        return leader_of(self.views)


@dataclass
class FakeNetworkControl:
    """Records the kernel-level faults asked of it; heals are recorded too."""

    calls: list[tuple[str, object]] = field(default_factory=list)

    def drop_packets(self, run_id: str, key: str | int, name: str, percent: float) -> ActiveFault:
        from harness.faults.base import SimpleActiveFault

        self.calls.append(("drop_packets", (run_id, key, name, percent)))
        return SimpleActiveFault([name], {}, lambda: self.calls.append(("heal", key)))

    def partition(self, run_id: str, key: str | int, groups: list[list[str]]) -> ActiveFault:
        from harness.faults.base import SimpleActiveFault

        self.calls.append(("partition", (run_id, key, groups)))
        targets = [name for group in groups for name in group]
        return SimpleActiveFault(targets, {}, lambda: self.calls.append(("heal", key)))

    def rule_counters(self, tag: str) -> list[CountedRule]:
        return []  # it adds no rule
