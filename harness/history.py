"""The event stream of a run and the history recorded from it.

Probes, the load process and the fault timeline publish records on one bus; the history, the
live view and anything else subscribe to it (the Locust idea: statistics are one listener).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.records import (
    FaultEvent,
    MetricSample,
    PhaseMark,
    ProbeSample,
    RequestBatch,
    RequestRecord,
)
from harness.request_log import RequestLog

Record = RequestRecord | RequestBatch | ProbeSample | FaultEvent | PhaseMark | MetricSample
Listener = Callable[[Record], None]
logger = logging.getLogger(__name__)


class EventBus:
    """Publishes each record to every listener, on the publisher's thread.

    A listener that raises is logged once and dropped: a broken live view must not kill the
    probe or the load reader that published to it, nor keep the history from recording."""

    def __init__(self) -> None:
        # Replaced, never changed in place (copy on write): publishing reads it without a lock.
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()
        self.failures: list[str] = []  # one line per listener dropped, for the run's log

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def publish(self, record: Record) -> None:
        # Listeners must be quick and thread-safe: they run on the publisher's thread.
        for listener in self._listeners:
            try:
                listener(record)
            except Exception as error:
                self._drop(listener, error)

    def _drop(self, listener: Listener, error: Exception) -> None:
        with self._lock:
            if listener not in self._listeners:
                return
            self._listeners = tuple(item for item in self._listeners if item is not listener)
            name = getattr(listener, "__qualname__", repr(listener))
            self.failures.append(f"listener {name} dropped: {type(error).__name__}: {error}")
        logger.warning("%s", self.failures[-1])


@dataclass
class History:
    """Everything that happened in a run, in arrival order per kind."""

    # Columns, not objects: ~30 bytes a request instead of ~330 (harness/request_log.py);
    # a history the checks judge may join several logs instead (JoinedRequests).
    requests: Sequence[RequestRecord] = field(default_factory=RequestLog)
    probes: list[ProbeSample] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    phases: list[PhaseMark] = field(default_factory=list)
    metrics: list[MetricSample] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.requests, list | tuple):  # records, as tests give them
            self.requests = RequestLog(self.requests)

    def record(self, record: Record) -> None:
        with self._lock:
            match record:
                case RequestBatch():
                    self._log().extend_rows(record.rows)
                case RequestRecord():
                    self._log().append(record)
                case ProbeSample():
                    self.probes.append(record)
                case FaultEvent():
                    self.faults.append(record)
                case PhaseMark():
                    self.phases.append(record)
                case MetricSample():
                    self.metrics.append(record)

    def _log(self) -> RequestLog:
        if not isinstance(self.requests, RequestLog):
            raise TypeError("a history of joined requests is read, not recorded to")
        return self.requests

    def phase_ns(self, name: str) -> int | None:
        return next((p.at_ns for p in self.phases if p.name == name), None)
