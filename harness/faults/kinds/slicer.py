"""slicer: a Toxiproxy slicer toxic: data cut into small slices, delay_us apart."""

from __future__ import annotations

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_toxic
from harness.faults.kind import FaultKind
from harness.faults.kinds._toxics import inject_toxic
from harness.scenario.model import SlicerFault


def inject(fault: SlicerFault, key: int, context: FaultContext) -> ActiveFault:
    return inject_toxic(
        fault,
        key,
        context,
        "slicer",
        {
            "average_size": fault.average_size,
            "size_variation": fault.size_variation,
            "delay": fault.delay_us,
        },
    )


KIND = FaultKind(
    name="slicer",
    model=SlicerFault,
    inject=inject,
    fault_class=network_class,
    watch_effect=watch_toxic,
)
