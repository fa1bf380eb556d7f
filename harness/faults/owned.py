"""The processes a run started, known by pid *and* start time.

A pid alone names a process only while it lives: once it ends, the kernel may give the number
to an unrelated process. Every signal the harness sends on a fault's behalf, during the run or
when healing after a crash, goes to a process it recorded at start and only while that pid
still has the recorded start time; anything else is refused with a GuardrailError.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict

from harness.errors import GuardrailError

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


class OwnedProcess(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    pid: int
    started_tick: int  # clock ticks from boot to its start: see start_tick


def start_tick(pid: int) -> int:
    """The clock tick after boot at which `pid` started (field 22 of /proc/<pid>/stat).

    It is the process's identity beside its pid, and it never changes. psutil's create_time
    is not that: it adds /proc/stat's btime, which the kernel recomputes from the wall clock
    and which moved by a whole second under CI (a live service refused as a reused pid).
    Raises FileNotFoundError (or ProcessLookupError) once the process is gone."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    after_name = stat[stat.rindex(b")") + 2 :].split()  # the name may hold spaces and ")"
    return int(after_name[19])  # fields 3, 4, ... from index 0: field 22 is index 19


def own(service: str, pid: int) -> OwnedProcess:
    """Record `pid` as `service`'s process now (it must be alive)."""
    try:
        started = start_tick(pid)
    except OSError as error:
        raise GuardrailError(f"{service}: pid {pid} cannot be recorded: {error}") from None
    return OwnedProcess(service=service, pid=pid, started_tick=started)


def current(owned: OwnedProcess) -> psutil.Process | None:
    """The live process `owned` names, or None when it has ended; a pid now carried by a
    process with another start tick is refused."""
    try:
        process = psutil.Process(owned.pid)
        started = start_tick(owned.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, OSError):
        return None
    if started != owned.started_tick:
        raise GuardrailError(
            f"{owned.service}: pid {owned.pid} now belongs to another process (started "
            f"{started / TICKS_PER_S:.2f} s after boot, not "
            f"{owned.started_tick / TICKS_PER_S:.2f}); refusing to signal it"
        )
    return process


def alive(owned: OwnedProcess) -> bool:
    """Whether `owned` still runs: same pid, same start tick."""
    try:
        return current(owned) is not None
    except GuardrailError:  # its pid now belongs to another process
        return False


def signal_group(owned: OwnedProcess, signal_number: int) -> bool:
    """Signal the process group `owned` leads (services run in their own session); False
    when it has ended."""
    if current(owned) is None:
        return False
    try:
        os.killpg(owned.pid, signal_number)
    except (ProcessLookupError, PermissionError):  # not a group leader: the process alone
        try:
            os.kill(owned.pid, signal_number)
        except ProcessLookupError:
            return False
    return True


def end(owned: OwnedProcess) -> bool:
    """SIGCONT then SIGKILL to its group (CONT first so that no member is left stopped if
    the KILL misses it); False if it had already ended."""
    if not signal_group(owned, signal.SIGCONT):
        return False
    signal_group(owned, signal.SIGKILL)
    return True


class ProcessGuard:
    """The pids one run started, by service; faults act only on these."""

    def __init__(self) -> None:
        self._owned: dict[str, OwnedProcess] = {}

    def record(self, service: str, pid: int) -> OwnedProcess:
        owned = own(service, pid)
        self._owned[service] = owned
        return owned

    def owned(self, service: str) -> OwnedProcess | None:
        return self._owned.get(service)

    def check(self, service: str, pid: int | None) -> OwnedProcess:
        """The recorded process of `service`, if `pid` is it and still the same process."""
        owned = self._owned.get(service)
        if owned is None:
            raise GuardrailError(f"{service} was not started by this run; refusing to touch it")
        if pid != owned.pid:
            raise GuardrailError(
                f"{service}: pid {pid} is not the process this run started for it "
                f"(pid {owned.pid}); refusing to touch it"
            )
        if current(owned) is None:
            raise GuardrailError(f"{service}: its process (pid {owned.pid}) has ended")
        return owned
