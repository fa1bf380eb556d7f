"""pause: SIGSTOP the target (it keeps its sockets, answers nothing); SIGCONT on heal."""

from __future__ import annotations

from typing import Literal

from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.classes import process_fault_class
from harness.faults.effects_process import watch_pause
from harness.faults.journal import ContinueProcesses
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import journal_intent, owned_processes, services
from harness.scenario.fault_fields import FaultBase, PositiveSeconds, Target


class PauseFault(FaultBase):
    type: Literal["pause"]
    target: Target
    duration_s: PositiveSeconds  # a pause always ends: SIGCONT


def inject(fault: PauseFault, key: int, context: FaultContext) -> ActiveFault:
    names = services(fault.target, context)
    owned = owned_processes(context, names)
    journal_intent(context, key, "pause", names, [ContinueProcesses(processes=owned)])
    for name in names:
        context.backend.pause(name)

    def resume_all() -> None:
        for name in names:
            context.backend.resume(name)

    return SimpleActiveFault(names, {"signal": "SIGSTOP"}, resume_all)


KIND = FaultKind(
    name="pause",
    model=PauseFault,
    inject=inject,
    fault_class=lambda fault, topology: process_fault_class(fault.target, topology),
    removes_leader=True,
    watch_effect=watch_pause,
)
