"""The parts one run is built from, each behind a small protocol, so the pipeline can run on
any backend and so it can be run whole on fakes in a unit test (tests/unit/test_pipeline.py).

`real_parts()` is what `hftchaos run` uses: the backend chosen by name (harness/backends/
registry.py), a plan with the provisioned toolchain, the Locust load process and the HTTP
leader probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness import settings
from harness.backends.base import Backend, LeaderLookup
from harness.records import ProbeSample, RequestBatch, RequestRecord
from harness.scenario.model import LoadProfile
from harness.topology.loader import LoadedTopology
from harness.topology.model import RaftStatus
from harness.topology.plan import Plan

Report = Callable[[str], None]


class LoadResult(Protocol):
    @property
    def exit_code(self) -> int | None: ...


class LoadRun(Protocol):
    """One bounded stretch of open-loop load: every request published as a RequestRecord."""

    @property
    def pid(self) -> int | None: ...

    @property
    def pids(self) -> list[int]:
        """Every process of the load, `pid` first (the rig probes watch each)."""
        ...

    def start(self, not_before_ns: int | None = None) -> None:
        """Starts the load; its first slot not before `not_before_ns` (CLOCK_MONOTONIC)."""
        ...

    def wait_started(self, timeout_s: float) -> int | None:
        """The intended time of the first request (the schedule's origin), or None."""

    def wait(self, timeout_s: float) -> LoadResult: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class LoadRequest:
    gateway: str
    profile: LoadProfile
    id_prefix: str
    seed: int
    # Each request as a record, or a batch of them at once (RequestBatch: the Locust load's).
    on_record: Callable[[RequestRecord | RequestBatch], None]
    log_file: Path
    run_dir: Path
    targets: tuple[str, ...] = ()  # every address the senders spread over (default: gateway)


@dataclass(frozen=True)
class WarmUp:
    """A warm-up load that has begun: when its schedule ends, and how long to wait for it."""

    load: LoadRun
    ends_ns: int  # CLOCK_MONOTONIC: its last slot's end, where the measured load takes over
    timeout_s: float

    def finish(self) -> None:
        try:
            self.load.wait(self.timeout_s)
        finally:
            self.load.stop()


class LeaderWatch(LeaderLookup, Protocol):
    """Samples every Raft member while it runs (a ProbeSample each) and answers who leads."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class RunParts:
    open_backend: Callable[[Plan, Report], AbstractContextManager[Backend]]
    make_plan: Callable[[LoadedTopology, Path], Plan]
    load: Callable[[LoadRequest], LoadRun]
    leader_watch: Callable[[Plan, Callable[[ProbeSample], None]], LeaderWatch]
    # Whether a load may start while another runs: not with a fixed master address (remote
    # workers dial it), where only one master at a time can listen.
    overlapping_loads: bool = True


def real_parts(backend: str | None = None) -> RunParts:
    from harness.backends.registry import backend_opener, chosen_backend

    name = chosen_backend(backend)

    def plan_for_backend(loaded: LoadedTopology, run_dir: Path) -> Plan:
        return _plan_with_toolchain(loaded, run_dir, name)

    return RunParts(
        open_backend=backend_opener(name),
        make_plan=plan_for_backend,
        load=_locust_load,
        leader_watch=_http_leader_probe,
        overlapping_loads=settings.LOAD_BIND.read() is None,
    )


def _plan_with_toolchain(loaded: LoadedTopology, run_dir: Path, backend: str) -> Plan:
    from harness.backends.registry import realization_for
    from harness.toolchain import ensure_toolchain
    from harness.topology.plan import make_plan

    toolchain = ensure_toolchain()
    return make_plan(loaded, run_dir, toolchain, realization_for(backend, toolchain))


def _locust_load(request: LoadRequest) -> LoadRun:
    from harness.load.driver import LoadDriver

    return LoadDriver(
        request.gateway,
        request.profile,
        id_prefix=request.id_prefix,
        seed=request.seed,
        on_requests=request.on_record,
        log_file=request.log_file,
        run_dir=request.run_dir,
        targets=request.targets,
    )


def _http_leader_probe(plan: Plan, publish: Callable[[ProbeSample], None]) -> LeaderWatch:
    from harness.probes import LeaderProbe

    return LeaderProbe(raft_statuses(plan), publish)


def raft_statuses(plan: Plan) -> dict[str, RaftStatus]:
    """Every Raft member of every cluster, with its resolved `raft:` block."""
    return {name: service.raft for name, service in plan.services.items() if service.raft}


class _Finished:
    exit_code: int | None = 0


class IdleLoad:
    """The load of a topology without an order gateway: no requests, the same schedule. The
    run then measures leadership (failover, leaderless time) and the faults' effects only;
    its order figures stay empty, so its steady-state windows say unknown, never valid."""

    def __init__(self, duration_s: float) -> None:
        self._duration_s = duration_s
        self._origin_ns: int | None = None
        self._stopped = threading.Event()

    @property
    def pid(self) -> int | None:
        return None

    @property
    def pids(self) -> list[int]:
        return []

    def start(self, not_before_ns: int | None = None) -> None:
        self._origin_ns = max(time.monotonic_ns(), not_before_ns or 0)

    def wait_started(self, timeout_s: float) -> int | None:
        return self._origin_ns

    def wait(self, timeout_s: float) -> LoadResult:
        self._stopped.wait(min(self._duration_s, timeout_s))
        return _Finished()

    def stop(self) -> None:
        self._stopped.set()
