"""Abort conditions watched live (the scenario's `abort:`): a share of failed requests above
a limit for long enough, a probe failing for long enough, or a global maximum duration; and,
for every run, the results disk filling up (harness/store/space.py).

The watch listens to the run's event bus and is asked every tick whether a condition holds;
the first one that trips is reported once, with why, and the runner stops the load, heals
and marks the run aborted. `check` takes the instant as an argument so that the rules are
tested without a clock.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.records import MetricSample, Outcome, ProbeSample, RequestBatch, RequestRecord
from harness.scenario.model import AbortConditions
from harness.store.space import disk_nearly_full

NS = 1_000_000_000
TICK_S = 0.1
FAILED = (Outcome.ERROR, Outcome.UNKNOWN)
FAILED_VALUES = frozenset(outcome.value for outcome in FAILED)  # as a RequestBatch's rows say


class AbortWatch:
    def __init__(
        self,
        conditions: AbortConditions,
        on_trip: Callable[[str], None],
        results_dir: Path | None = None,
    ) -> None:
        self.conditions = conditions
        self.results_dir = results_dir  # watched for space whatever the scenario says
        self._on_trip = on_trip
        self._answers: collections.deque[tuple[int, bool]] = collections.deque()
        self._lock = threading.Lock()
        self._errors_since: int | None = None
        self._probe_ok_ns: int | None = None  # the last instant the watched probe was fine
        self._started_ns: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reason: str | None = None

    @property
    def active(self) -> bool:
        conditions = self.conditions
        watched = (conditions.error_rate, conditions.probe_failing, conditions.max_duration_s)
        return self.results_dir is not None or any(rule is not None for rule in watched)

    def listen(self, record: object) -> None:
        """An EventBus listener: requests and the watched probe's samples."""
        with self._lock:
            if isinstance(record, RequestBatch):
                self._answers.extend((row[4], row[5] in FAILED_VALUES) for row in record.rows)
            elif isinstance(record, RequestRecord):
                self._answers.append((record.end_ns, record.outcome in FAILED))
            elif self._probe_fine(record):
                self._probe_ok_ns = max(self._probe_ok_ns or 0, _arrival(record))

    def _probe_fine(self, record: object) -> bool:
        watched = self.conditions.probe_failing
        if watched is None:
            return False
        if watched.probe == "leader":
            return isinstance(record, ProbeSample) and record.reachable and record.role == "leader"
        return (
            isinstance(record, MetricSample)
            and record.probe == watched.probe
            and record.value is not None
        )

    def start(self, started_ns: int) -> None:
        self._started_ns = started_ns
        self._probe_ok_ns = started_ns
        if not self.active:
            return
        self._thread = threading.Thread(target=self._run, name="abort-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            reason = self.check(time.monotonic_ns())
            if reason is not None:
                self.reason = reason
                self._on_trip(reason)
                return

    def check(self, now_ns: int) -> str | None:
        """Why the run must stop now, or None."""
        with self._lock:
            return (
                self._disk()
                or self._duration(now_ns)
                or self._error_rate(now_ns)
                or self._probe(now_ns)
            )

    def _disk(self) -> str | None:
        return disk_nearly_full(self.results_dir) if self.results_dir is not None else None

    def _duration(self, now_ns: int) -> str | None:
        limit = self.conditions.max_duration_s
        if limit is None or self._started_ns is None:
            return None
        if now_ns - self._started_ns >= limit * NS:
            return f"abort.max_duration_s: the run passed {limit:g} s"
        return None

    def _error_rate(self, now_ns: int) -> str | None:
        rule = self.conditions.error_rate
        if rule is None:
            return None
        while self._answers and self._answers[0][0] < now_ns - rule.window_s * NS:
            self._answers.popleft()
        if not self._answers:
            return None  # nothing answered in the window: nothing to judge the share by
        share = sum(failed for _, failed in self._answers) / len(self._answers)
        if share <= rule.above:
            self._errors_since = None
            return None
        if self._errors_since is None:
            self._errors_since = now_ns
        if now_ns - self._errors_since >= rule.for_s * NS:
            return (
                f"abort.error_rate: {share:.0%} of requests failed (limit {rule.above:.0%}) "
                f"for {rule.for_s:g} s"
            )
        return None

    def _probe(self, now_ns: int) -> str | None:
        rule = self.conditions.probe_failing
        if rule is None or self._probe_ok_ns is None:
            return None
        if now_ns - self._probe_ok_ns >= rule.for_s * NS:
            return f"abort.probe_failing: probe {rule.probe} failed for {rule.for_s:g} s"
        return None


def _arrival(record: object) -> int:
    if isinstance(record, ProbeSample):
        return record.arrival_ns
    assert isinstance(record, MetricSample)
    return record.at_ns
