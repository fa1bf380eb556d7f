"""Target resolution shared by the kinds that act on services."""

from __future__ import annotations

from harness.faults.base import FaultContext
from harness.faults.selectors import resolve_target
from harness.scenario.model import Target


def services(target: Target, context: FaultContext) -> list[str]:
    return resolve_target(target, context.plan, context.leader_lookup, context.random)
