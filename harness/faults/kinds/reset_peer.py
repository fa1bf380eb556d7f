"""reset_peer: a Toxiproxy reset_peer toxic: connections are reset (TCP RST) after timeout_ms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_toxic
from harness.faults.kind import FaultKind
from harness.faults.kinds._toxics import inject_toxic
from harness.scenario.fault_fields import HOUR_MS, LinkFaultBase


class ResetPeerFault(LinkFaultBase):
    type: Literal["reset_peer"]
    timeout_ms: int = Field(default=0, ge=0, le=HOUR_MS)


def inject(fault: ResetPeerFault, key: int, context: FaultContext) -> ActiveFault:
    return inject_toxic(fault, key, context, "reset_peer", {"timeout": fault.timeout_ms})


KIND = FaultKind(
    name="reset_peer",
    model=ResetPeerFault,
    inject=inject,
    fault_class=network_class,
    watch_effect=watch_toxic,
)
