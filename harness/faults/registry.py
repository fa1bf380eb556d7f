"""Every fault kind, found by walking `harness.faults.kinds`: the one table the timeline, the
runner's requirement checks, clock control and the suite's incident classes consult."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING, Any

import harness.faults.kinds
from harness.faults.kind import FaultKind
from harness.scenario.fault_fields import FaultBase
from harness.topology.model import Topology

if TYPE_CHECKING:  # the scenario model collects its fault union from this registry
    from harness.scenario.model import Scenario


@cache
def fault_kinds() -> dict[str, FaultKind[Any]]:
    kinds: dict[str, FaultKind[Any]] = {}
    for module_info in pkgutil.iter_modules(harness.faults.kinds.__path__):
        if module_info.name.startswith("_"):
            continue  # helpers shared by several kinds
        module = importlib.import_module(f"harness.faults.kinds.{module_info.name}")
        kind: FaultKind[Any] = module.KIND
        if kind.name in kinds:
            raise RuntimeError(f"two fault kinds are called {kind.name!r}")
        kinds[kind.name] = kind
    return kinds


def fault_models() -> tuple[type[FaultBase], ...]:
    """Every kind's scenario model, in a stable order (the scenario's union of fault types)."""
    return tuple(kind.model for _name, kind in sorted(fault_kinds().items()))


def fault_type_names() -> list[str]:
    return sorted(fault_kinds())


def kind_of(fault: FaultBase) -> FaultKind[Any]:
    fault_type = getattr(fault, "type", None)
    kind = fault_kinds().get(str(fault_type))
    if kind is None or not isinstance(fault, kind.model):
        raise KeyError(f"no fault kind for {type(fault).__name__} (type {fault_type!r})")
    return kind


def needs_netfilter(scenario: Scenario) -> bool:
    return any(kind_of(fault).needs_netfilter for fault in scenario.faults)


def clock_controlled_services(scenario: Scenario, topology: Topology) -> set[str]:
    """Services a fault may move the clock of: only they get libfaketime (it has a cost)."""
    chosen: set[str] = set()
    for fault in scenario.faults:
        chosen |= kind_of(fault).clock_controlled(fault, topology)
    return chosen
