"""clock_skew: step the target's wall clock by offset_ms (monotonic time untouched); the
offset goes back to 0 on heal. Needs the service started with clock control."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness.errors import BackendError
from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.classes import clock_class
from harness.faults.clock import offset_file
from harness.faults.effects_clock import watch_clock_skew
from harness.faults.journal import ResetClocks
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import journal_intent, services
from harness.faults.selectors import topology_members
from harness.scenario.fault_fields import DAY_MS, FaultBase, RoleSelector, Target
from harness.topology.model import Topology


class ClockSkewFault(FaultBase):
    type: Literal["clock_skew"]
    target: Target
    offset_ms: float = Field(
        ge=-DAY_MS, le=DAY_MS, description="wall clock step; negative moves it back (a day at most)"
    )

    @model_validator(mode="after")
    def _nonzero(self) -> ClockSkewFault:
        if self.offset_ms == 0:
            raise ValueError("offset_ms must not be 0")
        return self


def inject(fault: ClockSkewFault, key: int, context: FaultContext) -> ActiveFault:
    clock = context.clock
    if clock is None:
        raise BackendError("this backend cannot move a service's clock")
    names = services(fault.target, context)
    files = [str(offset_file(context.plan.services[name].directory)) for name in names]
    journal_intent(context, key, "clock_skew", names, [ResetClocks(files=files)])
    for name in names:
        clock.set_clock_offset(name, fault.offset_ms)

    def reset_clocks() -> None:
        for name in names:
            clock.set_clock_offset(name, 0)

    return SimpleActiveFault(names, {"offset_ms": fault.offset_ms}, reset_clocks)


def clock_controlled(fault: ClockSkewFault, topology: Topology) -> set[str]:
    """Every service the selector may pick at run time."""
    if isinstance(fault.target, RoleSelector):
        return set(topology_members(fault.target, topology))
    return {fault.target}


KIND = FaultKind(
    name="clock_skew",
    model=ClockSkewFault,
    inject=inject,
    fault_class=clock_class,
    clock_controlled=clock_controlled,
    watch_effect=watch_clock_skew,
)
