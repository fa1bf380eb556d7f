"""latency: a Toxiproxy latency toxic on the link (latency_ms, jitter_ms)."""

from __future__ import annotations

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_toxic
from harness.faults.kind import FaultKind
from harness.faults.kinds._toxics import inject_toxic
from harness.scenario.model import LatencyFault


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
