"""latency: a Toxiproxy latency toxic on the link (latency_ms, jitter_ms)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_toxic
from harness.faults.kind import FaultKind
from harness.faults.kinds._toxics import inject_toxic
from harness.scenario.fault_fields import LinkFaultBase


class LatencyFault(LinkFaultBase):
    type: Literal["latency"]
    latency_ms: int = Field(gt=0, le=60_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)


def inject(fault: LatencyFault, key: int, context: FaultContext) -> ActiveFault:
    return inject_toxic(
        fault, key, context, "latency", {"latency": fault.latency_ms, "jitter": fault.jitter_ms}
    )


KIND = FaultKind(
    name="latency",
    model=LatencyFault,
    inject=inject,
    fault_class=network_class,
    watch_effect=watch_toxic,
)
