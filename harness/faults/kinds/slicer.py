"""slicer: a Toxiproxy slicer toxic: data cut into small slices, delay_us apart."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_toxic
from harness.faults.kind import FaultKind
from harness.faults.kinds._toxics import inject_toxic
from harness.scenario.fault_fields import LinkFaultBase


class SlicerFault(LinkFaultBase):
    type: Literal["slicer"]
    average_size: int = Field(gt=0, le=1 << 20, description="bytes")
    size_variation: int = Field(default=0, ge=0, le=1 << 20, description="bytes")
    delay_us: int = Field(default=0, ge=0, le=60_000_000, description="a minute at most")

    @model_validator(mode="after")
    def _variation_below_size(self) -> SlicerFault:
        # Toxiproxy draws each slice from average_size +- size_variation: it must stay above 0.
        if self.size_variation >= self.average_size:
            raise ValueError(
                f"size_variation ({self.size_variation}) must be smaller than average_size "
                f"({self.average_size})"
            )
        return self


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
