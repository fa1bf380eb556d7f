from __future__ import annotations

import time
from pathlib import Path

from harness.backends.fakes import FakeBackend
from harness.faults.base import FaultContext, HealRegistry
from harness.faults.kinds.kill import KillFault
from harness.faults.kinds.latency import LatencyFault
from harness.faults.kinds.pause import PauseFault
from harness.faults.kinds.restart import RestartFault
from harness.paths import REFERENCE_TOPOLOGY
from harness.records import FaultEvent
from harness.scenario.fault_fields import Repeat, RoleSelector
from harness.timeline import Timeline, schedule
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan


def test_repeats_heal_before_the_next_application() -> None:
    flapping = LatencyFault(
        type="latency",
        at_s=2,
        duration_s=1,
        link="gateway-n1",
        latency_ms=100,
        repeat=Repeat(times=3, every_s=2),
    )
    steps = [(s.offset_s, s.action, s.repeat) for s in schedule([flapping])]
    assert steps == [
        (2, "apply", 0),
        (3, "heal", 0),
        (4, "apply", 1),
        (5, "heal", 1),
        (6, "apply", 2),
        (7, "heal", 2),
    ]


def test_kill_heals_by_restart_after_its_delay_and_ordering_across_faults() -> None:
    kill = KillFault(type="kill", at_s=5, target=RoleSelector(select="leader"), restart_after_s=3)
    pause = PauseFault(type="pause", at_s=1, duration_s=0.5, target="n2")
    steps = [(s.offset_s, s.action, s.fault_index) for s in schedule([kill, pause])]
    assert steps == [(1, "apply", 1), (1.5, "heal", 1), (5, "apply", 0), (8, "heal", 0)]


def test_fault_without_duration_has_no_scheduled_heal() -> None:
    kill = KillFault(type="kill", at_s=5, target="n1")
    assert [s.action for s in schedule([kill])] == ["apply"]


def started_fake_backend(toolchain: Toolchain, tmp_path: Path) -> FakeBackend:
    backend = FakeBackend(make_plan(load_topology(REFERENCE_TOPOLOGY), tmp_path, toolchain))
    backend.up()
    return backend


def test_a_restart_is_healed_when_it_completes_not_at_the_end_of_the_run(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    backend = started_fake_backend(fake_toolchain, tmp_path)
    events: list[FaultEvent] = []
    restart = RestartFault(type="restart", at_s=0, target="n2")
    context = FaultContext(backend, backend.plan, "run-1")
    timeline = Timeline([restart], context, HealRegistry(), events.append)
    timeline.start(time.monotonic_ns())
    timeline.stop()  # returns once the schedule ran: the restart is its only step
    assert [(e.phase, e.targets) for e in events] == [("applied", ("n2",)), ("healed", ("n2",))]
    assert backend.calls[-2:] == [("stop", "n2"), ("start", "n2")]
    timeline.heal_remaining()
    assert len(events) == 2  # nothing left to heal at the end


def test_a_slow_heal_makes_the_next_application_late_and_that_is_recorded(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    """Checked by ordering against moments the test stamps itself, so that a busy machine,
    which makes everything later, cannot break it: late_ms is no more than the delay from the
    due time to the recorded application, no less than the delay from it to the end of the
    slow heal. n2's heal, due at 0.05 s, cannot start before n2 was applied, and takes 0.4 s;
    n3 is due at 0.1 s: so n3 is at least max(0.05 s, n2's lateness) + 0.4 s - 0.1 s late."""
    backend = started_fake_backend(fake_toolchain, tmp_path)
    resume = backend.resume
    resumed_ns: list[int] = []

    def slow_resume(name: str) -> None:  # like a Toxiproxy toxic that takes 5 s to remove
        time.sleep(0.4)
        resume(name)
        resumed_ns.append(time.monotonic_ns())

    backend.resume = slow_resume  # type: ignore[method-assign]
    events: list[FaultEvent] = []
    faults = [
        PauseFault(type="pause", at_s=0, duration_s=0.05, target="n2"),
        PauseFault(type="pause", at_s=0.1, duration_s=0.05, target="n3"),
    ]
    context = FaultContext(backend, backend.plan, "run-1")
    timeline = Timeline(faults, context, HealRegistry(), events.append)
    origin_ns = time.monotonic_ns()
    timeline.start(origin_ns)
    deadline = time.monotonic() + 30
    while len([e for e in events if e.phase == "applied"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    timeline.stop()
    timeline.heal_remaining()
    applied = {e.targets: e for e in events if e.phase == "applied"}
    late = {targets: event.detail["late_ms"] for targets, event in applied.items()}
    assert isinstance(late[("n2",)], float) and isinstance(late[("n3",)], float)
    rounding_ms = 0.05  # late_ms is rounded to 0.1 ms
    due_ns = {("n2",): origin_ns, ("n3",): origin_ns + 100_000_000}
    for targets, event in applied.items():
        assert 0 <= late[targets] <= (event.at_ns - due_ns[targets]) / 1e6 + rounding_ms
    assert late[("n3",)] >= (resumed_ns[0] - due_ns[("n3",)]) / 1e6 - rounding_ms
    assert late[("n3",)] >= max(50, late[("n2",)]) + 300 - rounding_ms
