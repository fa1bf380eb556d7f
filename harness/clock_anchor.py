"""Monotonic instants next to UTC, so a run's faults line up with a system's own log lines.

Every instant of a run is `time.monotonic_ns()` of the harness host (one clock, never
stepped); a system logs wall time. An anchor is one (monotonic, UTC) pair read as close
together as the host allows; the run takes one when it starts and one when it ends (their
difference shows how far the wall clock was moved meanwhile), and converts any instant with
the first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

READINGS = 20  # the tightest of this many bracketed readings is kept


@dataclass(frozen=True)
class ClockAnchor:
    monotonic_ns: int
    utc_ns: int  # nanoseconds since the Unix epoch, UTC
    uncertainty_ns: int  # how long the bracketing monotonic readings took

    def utc_ns_of(self, monotonic_ns: int) -> int:
        return self.utc_ns + (monotonic_ns - self.monotonic_ns)

    def iso_of(self, monotonic_ns: int) -> str:
        return iso_utc(self.utc_ns_of(monotonic_ns))


def take_anchor() -> ClockAnchor:
    best: ClockAnchor | None = None
    for _ in range(READINGS):
        before = time.monotonic_ns()
        wall = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best.uncertainty_ns:
            best = ClockAnchor((before + after) // 2, wall, after - before)
    assert best is not None
    return best


def iso_utc(utc_ns: int) -> str:
    """2026-12-01T12:40:00.123456Z: microseconds, as systems log them."""
    seconds, nanos = divmod(utc_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
