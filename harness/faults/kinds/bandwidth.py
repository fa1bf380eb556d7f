"""bandwidth: a Toxiproxy bandwidth toxic: the link carries at most rate_kb_per_s."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_toxic
from harness.faults.kind import FaultKind
from harness.faults.kinds._toxics import inject_toxic
from harness.scenario.fault_fields import LinkFaultBase


class BandwidthFault(LinkFaultBase):
    type: Literal["bandwidth"]
    # 10 GB/s: more than loopback carries, so any larger figure is a typo, not a limit.
    rate_kb_per_s: int = Field(gt=0, le=10_000_000)


def inject(fault: BandwidthFault, key: int, context: FaultContext) -> ActiveFault:
    return inject_toxic(fault, key, context, "bandwidth", {"rate": fault.rate_kb_per_s})


KIND = FaultKind(
    name="bandwidth",
    model=BandwidthFault,
    inject=inject,
    fault_class=network_class,
    watch_effect=watch_toxic,
)
