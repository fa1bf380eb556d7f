"""The processes a run started, known by pid *and* start time.

A pid alone names a process only while it lives: once it ends, the kernel may give the number
to an unrelated process. Every signal the harness sends on a fault's behalf, during the run or
when healing after a crash, goes to a process it recorded at start and only while that pid
still has the recorded start time; anything else is refused with a GuardrailError.
"""

from __future__ import annotations

import os
import signal

import psutil
from pydantic import BaseModel, ConfigDict

from harness.errors import GuardrailError

# psutil derives the start time from the boot time and the start tick (10 ms on Linux), so
# the same process reads back the same value; a reused pid starts at least a tick later.
SAME_START_S = 0.001


class OwnedProcess(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    pid: int
    create_time: float  # seconds since the epoch, as psutil reports it


def own(service: str, pid: int) -> OwnedProcess:
    """Record `pid` as `service`'s process now (it must be alive)."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error as error:
        raise GuardrailError(f"{service}: pid {pid} cannot be recorded: {error}") from None
    return OwnedProcess(service=service, pid=pid, create_time=started)


def current(owned: OwnedProcess) -> psutil.Process | None:
    """The live process `owned` names, or None when it has ended; a pid now carried by a
    process with another start time is refused."""
    try:
        process = psutil.Process(owned.pid)
        started = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.NoSuchProcess:
        return None
    if abs(started - owned.create_time) > SAME_START_S:
        raise GuardrailError(
            f"{owned.service}: pid {owned.pid} now belongs to another process (started at "
            f"{started:.2f}, not {owned.create_time:.2f}); refusing to signal it"
        )
    return process


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
