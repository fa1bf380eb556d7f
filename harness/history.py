"""The event stream of a run and the history recorded from it.

Probes, the load process and the fault timeline publish records on one bus; the history, the
live view and anything else subscribe to it (the Locust idea: statistics are one listener).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.records import FaultEvent, MetricSample, PhaseMark, ProbeSample, RequestRecord

Record = RequestRecord | ProbeSample | FaultEvent | PhaseMark | MetricSample
Listener = Callable[[Record], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def publish(self, record: Record) -> None:
        # Listeners are called on the publisher's thread; they must be quick and thread-safe.
        for listener in self._listeners:
            listener(record)


@dataclass
class History:
    """Everything that happened in a run, in arrival order per kind."""

    requests: list[RequestRecord] = field(default_factory=list)
    probes: list[ProbeSample] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    phases: list[PhaseMark] = field(default_factory=list)
    metrics: list[MetricSample] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, record: Record) -> None:
        with self._lock:
            match record:
                case RequestRecord():
                    self.requests.append(record)
                case ProbeSample():
                    self.probes.append(record)
                case FaultEvent():
                    self.faults.append(record)
                case PhaseMark():
                    self.phases.append(record)
                case MetricSample():
                    self.metrics.append(record)

    def phase_ns(self, name: str) -> int | None:
        return next((p.at_ns for p in self.phases if p.name == name), None)
