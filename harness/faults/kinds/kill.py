"""kill: SIGKILL the target; restarted (and waited healthy) when the fault heals."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.classes import process_fault_class
from harness.faults.effects_process import watch_kill
from harness.faults.journal import NothingLeft
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import (
    journal_intent,
    owned_processes,
    record_started,
    services,
)
from harness.scenario.fault_fields import FaultBase, Seconds, Target


class KillFault(FaultBase):
    type: Literal["kill"]
    target: Target
    restart_after_s: Seconds | None = Field(
        default=None, description="start the service again this long after the kill"
    )

    def active_duration_s(self) -> float | None:
        return self.restart_after_s if self.restart_after_s is not None else self.duration_s


# What a crashed harness leaves of a kill or restart: nothing but processes, which are ended.
ENDS_WITH_THE_RUN = NothingLeft(
    why="its heal starts the service again; after a crash every process of the run is ended"
)


def inject(fault: KillFault, key: int, context: FaultContext) -> ActiveFault:
    names = services(fault.target, context)
    owned_processes(context, names)
    journal_intent(context, key, "kill", names, [ENDS_WITH_THE_RUN])
    for name in names:
        context.backend.kill(name)

    def restart_all() -> None:
        for name in names:
            context.backend.start(name)
        record_started(context, names)
        for name in names:
            context.backend.wait_healthy(name)

    return SimpleActiveFault(names, {"signal": "SIGKILL"}, restart_all)


KIND = FaultKind(
    name="kill",
    model=KillFault,
    inject=inject,
    fault_class=lambda fault, topology: process_fault_class(fault.target, topology),
    removes_leader=True,
    watch_effect=watch_kill,
)
