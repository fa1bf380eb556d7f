"""Effects of process faults, read from the kernel (`/proc`), not from the backend's books:
kill (the pid is gone or a zombie), pause (the process is stopped, state T, or its cgroup is
frozen) and restart (a process started after the fault went in now serves the service).

Where the backend has no pid for a service (a fake, a remote backend), its own state is the
only witness left, and the evidence says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from harness.backends.base import ServiceFacts, ServiceState
from harness.faults.effects import (
    Effect,
    EffectRequest,
    EffectStatus,
    EffectWatch,
    Observed,
    effective,
    not_effective,
    unverified,
)

PROC = Path("/proc")
_STOPPED_STATES = ("T", "t")  # stopped by a signal; stopped under a tracer
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A process's start time has the resolution of a clock tick (10 ms here); one more tick of
# slack keeps a restart that began in the same tick as the injection from looking older.
_START_SLACK_S = 2 / _CLOCK_TICKS
# A stopped or killed process shows it within microseconds to a few ms (a busy host); half a
# second is far beyond that and short next to any fault window worth running.
SETTLE_S = 0.5
SETTLE_POLL_S = 0.002


def process_state(pid: int) -> str | None:
    """The one-letter state of `pid` (R, S, D, T, Z, ...), None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name, in parentheses, may itself contain spaces and parentheses.
    return text[text.rindex(")") + 2]


def started_boot_s(pid: int) -> float | None:
    """When `pid` started, in seconds of CLOCK_BOOTTIME (its start tick; the wall clock's
    boot time in /proc/stat is whole seconds, too coarse to tell a restart's age)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[19]) / _CLOCK_TICKS  # field 22 of stat: starttime, in ticks since boot


def cgroup_frozen(pid: int) -> bool:
    """Whether `pid`'s cgroup is frozen (Docker's pause), cgroup v1 freezer or v2."""
    try:
        lines = (PROC / str(pid) / "cgroup").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return False
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            state = Path("/sys/fs/cgroup/freezer") / path.lstrip("/") / "freezer.state"
            if state.is_file() and state.read_text().strip() == "FROZEN":
                return True
        if controllers == "":
            events = Path("/sys/fs/cgroup") / path.lstrip("/") / "cgroup.events"
            if events.is_file() and "frozen 1" in events.read_text():
                return True
    return False


def each_target(request: EffectRequest, look: Callable[[ServiceFacts], Effect]) -> Effect:
    """Every target must show the effect; the first one that does not decides."""
    seen: dict[str, object] = {}
    for name in request.active.targets:
        effect = look(request.context.backend.facts(name))
        seen[name] = {"reason": effect.reason, **effect.evidence}
        if effect.status is not EffectStatus.EFFECTIVE:
            return Effect(effect.status, f"{name}: {effect.reason}", seen)
    if not seen:
        return not_effective("the fault resolved to no service")
    return effective("seen on every target", **seen)


def killed(facts: ServiceFacts) -> Effect:
    if facts.pid is None:
        if facts.state in (ServiceState.STOPPED, ServiceState.EXITED):
            return effective("the backend reports it stopped (no pid to look at)", source="backend")
        return not_effective(f"the backend reports it {facts.state.value}", source="backend")
    state = process_state(facts.pid)
    if state is None or state in ("Z", "X"):
        return effective(f"pid {facts.pid} is gone", pid=facts.pid, state=state or "gone")
    return not_effective(f"pid {facts.pid} still runs (state {state})", pid=facts.pid, state=state)


def paused(facts: ServiceFacts) -> Effect:
    if facts.pid is None:
        if facts.state is ServiceState.PAUSED:
            return effective("the backend reports it paused (no pid to look at)", source="backend")
        return not_effective(f"the backend reports it {facts.state.value}", source="backend")
    state = process_state(facts.pid)
    if state in _STOPPED_STATES:
        return effective(f"pid {facts.pid} is stopped (state {state})", pid=facts.pid, state=state)
    if state is not None and cgroup_frozen(facts.pid):
        return effective(f"the cgroup of pid {facts.pid} is frozen", pid=facts.pid, state=state)
    return not_effective(
        f"pid {facts.pid} is not stopped (state {state or 'gone'})", pid=facts.pid, state=state
    )


def restarted_after(injected_boot_s: float) -> Callable[[ServiceFacts], Effect]:
    def look(facts: ServiceFacts) -> Effect:
        if facts.pid is None:
            return unverified("the backend gives no pid, so a restart cannot be seen")
        started = started_boot_s(facts.pid)
        if started is None:
            return not_effective(f"pid {facts.pid} is not running after the restart")
        age_s = round(injected_boot_s - started, 3)
        evidence = {"pid": facts.pid, "started_before_fault_s": age_s}
        if started + _START_SLACK_S >= injected_boot_s:
            return effective(f"pid {facts.pid} started after the fault went in", **evidence)
        return not_effective(f"pid {facts.pid} is the process from before the fault", **evidence)

    return look


def settled(look: Callable[[], Effect], within_s: float = SETTLE_S) -> Callable[[], Effect]:
    """`look`, repeated until it sees the effect or `within_s` has passed: a signal is
    delivered asynchronously, so a process is not stopped or gone the instant kill() returns."""

    def again() -> Effect:
        deadline = time.monotonic() + within_s
        while True:
            effect = look()
            if effect.status is EffectStatus.EFFECTIVE or time.monotonic() >= deadline:
                return effect
            time.sleep(SETTLE_POLL_S)

    return again


def watch_kill(request: EffectRequest) -> EffectWatch:
    return Observed(settled(lambda: each_target(request, killed)))


def watch_pause(request: EffectRequest) -> EffectWatch:
    return Observed(settled(lambda: each_target(request, paused)))


def watch_restart(request: EffectRequest) -> EffectWatch:
    return Observed(lambda: each_target(request, restarted_after(request.injected_boot_s)))
