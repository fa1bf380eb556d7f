"""One topology kept up across a suite's runs (`share_topology: true`), instead of a fresh one
for every run.

A run's fixed cost (bring-up, tear-down, about 4.5 s of the reference topology's ~9.5 s) is
most of a short scenario's wall time, so a suite of short scenarios spent more time on its
topologies than on its scenarios. Sharing trades that time for independence: a run starts
from the state the previous one left (its orders, its leader, a replica it corrupted). So
before each run the topology must prove it is whole again: every service running and healthy
within HEALTHY_WITHIN_S. One that is not (a kill without restart, a service that crashed), or
one the next scenario cannot use (another topology, other services under clock control, another
backend), is torn down and a fresh one brought up for that run.

The faults of a run are healed by the run itself, before it returns, as always; what is kept
here is the topology and what its runs sent: the state holds every earlier run's orders, so the
safety checks of a run judge those too (no order acked in an earlier run may be lost since, and
none is taken for an order nobody sent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rich.markup import escape

from harness.backends.base import Backend, ServiceState
from harness.backends.registry import chosen_backend
from harness.errors import BackendError
from harness.records import RequestRecord
from harness.run_parts import real_parts
from harness.runner import RunResult, with_clock_control
from harness.scenario.loader import load_scenario
from harness.topology.model import Topology

Report = Callable[[str], None]
HEALTHY_WITHIN_S = 30.0


@dataclass
class _Running:
    topology: Topology  # with the clock control it was started with
    backend_name: str
    backend: Backend
    stack: ExitStack
    # Every request its runs sent so far: their orders are in its state, so the next run's
    # safety checks judge them too (else an order of an earlier run is one "nobody sent").
    requests: Sequence[RequestRecord] = ()


class SharedTopology:
    """A context manager: whatever it brought up is torn down when it exits, however."""

    def __init__(self, directory: Path, report: Report, backend: str | None = None) -> None:
        self._directory = directory
        self._report = report
        self._backend_choice = backend
        self._running: _Running | None = None
        self._started = 0

    def __enter__(self) -> SharedTopology:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._tear_down()

    def for_scenario(self, scenario_file: Path) -> Backend:
        """The running topology for this scenario: the one kept up, when it is whole and the
        scenario can use it, or a fresh one."""
        loaded = load_scenario(scenario_file)
        topology = with_clock_control(loaded.topology.topology, loaded.scenario)
        backend_name = chosen_backend(self._backend_choice, topology.backend)
        running = self._running
        if running is not None:
            problem = self._unusable(running, topology, backend_name)
            if problem is None:
                self._report(f"sharing topology {escape(topology.name)} with the previous run")
                return running.backend
            self._report(f"a fresh topology for this run: {escape(problem)}")
            self._tear_down()
        parts = real_parts(backend_name)
        self._started += 1
        plan = parts.make_plan(
            loaded.topology.with_topology(topology), self._directory / f"topology-{self._started}"
        )
        stack = ExitStack()
        try:
            backend = stack.enter_context(parts.open_backend(plan, self._report))
            backend.up()
        except BaseException:
            stack.close()
            raise
        self._running = _Running(topology, backend_name, backend, stack)
        return backend

    def earlier_requests(self) -> Sequence[RequestRecord]:
        """What the runs on the topology `for_scenario` last gave sent before this one."""
        return self._running.requests if self._running is not None else ()

    def ran(self, result: RunResult) -> None:
        """After a run on the shared topology: what its safety checks judged, earlier runs'
        requests included, is what the next run's must judge too."""
        if self._running is not None:
            self._running.requests = result.checked_requests

    def discard(self) -> None:
        """After a run that erred: its faults may not all be healed, so no later run may
        inherit the topology."""
        if self._running is not None:
            self._report("tearing the shared topology down: the run ended in a harness error")
        self._tear_down()

    def _unusable(self, running: _Running, topology: Topology, backend_name: str) -> str | None:
        if backend_name != running.backend_name:
            return f"this scenario runs on the {backend_name} backend"
        if topology != running.topology:
            return "this scenario needs another topology or other services under clock control"
        backend = running.backend
        # A job ran to completion at bring-up; only the long-running services must be up.
        services = [
            name for name, service in backend.plan.services.items() if service.kind != "job"
        ]
        for name in services:
            state = backend.facts(name).state
            if state is not ServiceState.RUNNING:
                return f"{name} is {state.value} after the previous run"
        try:
            for name in services:
                backend.wait_healthy(name, HEALTHY_WITHIN_S)
        except BackendError as error:
            return f"not healthy after the previous run: {error}"
        return None

    def _tear_down(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.stack.close()
