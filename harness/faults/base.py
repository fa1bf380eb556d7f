"""What a fault is at run time: injected against resolved targets, healed exactly once.

Every injector returns an `ActiveFault` whose `heal()` undoes what it did. The timeline keeps
each one in a `HealRegistry`, which heals whatever is still active when the run ends, whether
it ended normally, by an exception, by Ctrl-C or by SIGTERM.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from harness.backends.base import Backend, ClockControl, LeaderLookup, NetworkControl
from harness.errors import BackendError
from harness.topology.plan import Plan
from harness.toxiproxy import ToxiproxyClient

if TYPE_CHECKING:
    from harness.faults.journal import FaultJournal
    from harness.faults.owned import ProcessGuard


@dataclass
class FaultContext:
    """Everything an injector may act through; abilities a backend lacks are None."""

    backend: Backend
    plan: Plan
    run_id: str  # tags kernel rules and toxics so a sweep can find them
    leader_lookup: LeaderLookup | None = None
    clock: ClockControl | None = None
    toxiproxy: ToxiproxyClient | None = None
    random: random.Random = field(default_factory=random.Random)
    # What the run started (faults act only on those) and where each fault is written, with
    # its undo, before it is applied. None in unit tests of kinds that need neither.
    guard: ProcessGuard | None = None
    journal: FaultJournal | None = None
    network: NetworkControl | None = None  # kernel-level faults in a service's network context


def network_control(context: FaultContext, fault: str) -> NetworkControl:
    if context.network is None:
        raise BackendError(f"{fault}: this backend cannot apply kernel-level network faults")
    return context.network


class ActiveFault(Protocol):
    @property
    def targets(self) -> list[str]:
        """The services or links the fault was resolved to at injection."""

    @property
    def detail(self) -> dict[str, object]:
        """What exactly was done (rule specs, toxic attributes, offsets), for the record."""

    def heal(self) -> None:
        """Undo the fault. Idempotent: healing twice is harmless."""


@dataclass
class SimpleActiveFault:
    """An ActiveFault made of a heal function; most injectors need nothing more."""

    targets: list[str]
    detail: dict[str, object]
    undo: Callable[[], None] | None = None
    _healed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def heal(self) -> None:
        with self._lock:
            if self._healed:
                return
            self._healed = True
        if self.undo is not None:
            self.undo()


@dataclass
class HealRegistry:
    """Active faults by id; `heal_all` is what every exit path of a run calls."""

    active: dict[int, ActiveFault] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    journal: FaultJournal | None = None  # each heal that succeeds is journaled
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: int, fault: ActiveFault) -> None:
        with self._lock:
            self.active[key] = fault

    def heal(self, key: int) -> ActiveFault | None:
        with self._lock:
            fault = self.active.pop(key, None)
        if fault is not None:
            fault.heal()
            if self.journal is not None:
                self.journal.healed(key)
        return fault

    def heal_all(self) -> None:
        """Heal everything, newest first; one failed heal does not stop the others."""
        with self._lock:
            keys = sorted(self.active, reverse=True)
        for key in keys:
            try:
                self.heal(key)
            except Exception as error:  # keep healing the rest, report after
                self.errors.append(f"heal of fault {key} failed: {error}")


def monotonic_ns() -> int:
    """The one clock every record of a run is stamped with."""
    return time.monotonic_ns()
