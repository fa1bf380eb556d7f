"""The open-loop schedule: slot k is due at start + k / rate, whether or not replies came back.

Senders share one schedule and each claims the next free slot, so a slow reply delays only the
sender that waits for it; the slots keep their intended times, and latency measured from them
includes the time an order spent queued behind a stall (no coordinated omission).

With several worker processes, worker i of n takes every n-th slot of the one schedule (slots
i, i + n, i + 2n, ...): together they send exactly the single schedule, each at rate / n.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

NS_PER_S = 1_000_000_000


def slot_count(rate_per_s: float, duration_s: float) -> int:
    """At most rate * duration slots; the tolerance keeps 200/s * 3 s at 600, not 599."""
    return max(0, math.floor(rate_per_s * duration_s + 1e-9))


def slot_time_ns(start_ns: int, rate_per_s: float, index: int) -> int:
    """Computed from the index, not accumulated, so rounding never drifts."""
    return start_ns + round(index * NS_PER_S / rate_per_s)


@dataclass(frozen=True, slots=True)
class Slot:
    index: int  # in the whole schedule, over all workers
    intended_ns: int


@dataclass(frozen=True, slots=True)
class Share:
    """Which slots of the whole schedule one worker sends: those with index % count == index."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"share {self.index} of {self.count} does not exist")

    def slots_of(self, total: int) -> int:
        """How many of `total` slots fall to this share."""
        return max(0, -(-(total - self.index) // self.count))


# How long after the schedule's end a slot that was due before it may still be claimed. A
# sender that is free but was held off the CPU for a few milliseconds as the last slots fell due
# sends them late (their latency counts from the intended time, so the lateness is not hidden);
# without this, one descheduled moment on a busy machine turned the last slot into an "unsent"
# failure of the system under test (CI, 200/s: 599 of 600 sent). Past the grace the load stops.
CLAIM_GRACE_NS = 250_000_000


class SlotSchedule:
    """Hands out slots in order. Every intended time lies before `end_ns`; once the clock has
    passed `end_ns` by `CLAIM_GRACE_NS` (or `close()` was called) no slot is handed out any
    more, so a sender stuck behind slow replies drops the rest instead of sending long after
    the load was meant to stop."""

    def __init__(
        self, start_ns: int, rate_per_s: float, duration_s: float, share: Share = Share()
    ) -> None:
        self.start_ns = start_ns
        self.rate_per_s = rate_per_s
        self.share = share
        self.total = share.slots_of(slot_count(rate_per_s, duration_s))  # this share's
        self.end_ns = start_ns + round(duration_s * NS_PER_S)
        self._next = 0
        self._closed = False
        self._lock = threading.Lock()

    def claim(self, now_ns: int) -> Slot | None:
        with self._lock:
            if self._closed or self._next >= self.total or now_ns >= self.end_ns + CLAIM_GRACE_NS:
                self._closed = True
                return None
            index = self._next
            self._next += 1
        return self._slot(index)

    def _slot(self, own_index: int) -> Slot:
        index = own_index * self.share.count + self.share.index
        return Slot(index, slot_time_ns(self.start_ns, self.rate_per_s, index))

    def close(self) -> None:
        with self._lock:
            self._closed = True

    @property
    def claimed(self) -> int:
        return self._next

    def unclaimed(self, due_before_ns: int) -> list[Slot]:
        """Slots due before `due_before_ns` that were never sent because every sender was still
        waiting for a reply. They are offered load the system did not absorb: the worker records
        them as failures, or a saturated system would look better than one that keeps up.
        (Slots not yet due when the load was stopped early are not counted.)"""
        with self._lock:
            first = self._next
        slots = (self._slot(index) for index in range(first, self.total))
        return [slot for slot in slots if slot.intended_ns < due_before_ns]
