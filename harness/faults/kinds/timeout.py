"""timeout: a Toxiproxy timeout toxic: data is held (0) or the link closed after timeout_ms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_toxic
from harness.faults.kind import FaultKind
from harness.faults.kinds._toxics import inject_toxic
from harness.scenario.fault_fields import HOUR_MS, LinkFaultBase


class TimeoutFault(LinkFaultBase):
    type: Literal["timeout"]
    timeout_ms: int = Field(
        ge=0, le=HOUR_MS, description="0: data is held until the fault is healed"
    )


def inject(fault: TimeoutFault, key: int, context: FaultContext) -> ActiveFault:
    return inject_toxic(fault, key, context, "timeout", {"timeout": fault.timeout_ms})


KIND = FaultKind(
    name="timeout",
    model=TimeoutFault,
    inject=inject,
    fault_class=network_class,
    watch_effect=watch_toxic,
)
