"""kill: SIGKILL the target; restarted (and waited healthy) when the fault heals."""

from __future__ import annotations

from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.classes import process_fault_class
from harness.faults.effects_process import watch_kill
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import services
from harness.scenario.model import KillFault


def inject(fault: KillFault, _key: int, context: FaultContext) -> ActiveFault:
    names = services(fault.target, context)
    for name in names:
        context.backend.kill(name)

    def restart_all() -> None:
        for name in names:
            context.backend.start(name)
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
