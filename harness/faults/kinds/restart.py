"""restart: SIGTERM, start again, wait healthy; over when that is done."""

from __future__ import annotations

from typing import Literal

from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.classes import process_fault_class
from harness.faults.effects_process import watch_restart
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import (
    journal_intent,
    owned_processes,
    record_started,
    services,
)
from harness.faults.kinds.kill import ENDS_WITH_THE_RUN
from harness.scenario.fault_fields import FaultBase, Target


class RestartFault(FaultBase):
    type: Literal["restart"]
    target: Target


def inject(fault: RestartFault, key: int, context: FaultContext) -> ActiveFault:
    names = services(fault.target, context)
    owned_processes(context, names)
    journal_intent(context, key, "restart", names, [ENDS_WITH_THE_RUN])
    for name in names:
        context.backend.restart(name)
        record_started(context, [name])
    return SimpleActiveFault(names, {"how": "SIGTERM, start, wait healthy"})


KIND = FaultKind(
    name="restart",
    model=RestartFault,
    inject=inject,
    fault_class=lambda fault, topology: process_fault_class(fault.target, topology),
    removes_leader=True,
    # Its window ends when inject returns, not when the run heals what is left, where it
    # would claim later elections.
    completes_on_injection=True,
    planned=True,  # a rolling restart of several is a deployment
    watch_effect=watch_restart,
)
