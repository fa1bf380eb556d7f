"""The records a run is made of. Every timestamp is `time.monotonic_ns()` of this machine
(one clock for the harness, the load process and the probes); wall time is display only.

Record first, judge after: metrics and checks are pure functions over lists of these.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.Enum):
    ACKED = "acked"  # the gateway confirmed the order or cancel was committed
    REJECTED = "rejected"  # refused on purpose (risk check, unknown order): the system works
    ERROR = "error"  # refused without being sent (no leader): unavailable
    UNKNOWN = "unknown"  # sent, outcome not known (timeout, connection lost): unavailable


@dataclass(frozen=True, slots=True)
class RequestRecord:
    kind: str  # "new" | "cancel"
    client_order_id: str
    intended_ns: int  # when the open-loop schedule wanted it sent (coordinated omission)
    start_ns: int
    end_ns: int
    outcome: Outcome
    http_status: int | None = None
    reason: str = ""
    user: int = 0
    fills: int = 0

    @property
    def latency_ns(self) -> int:
        """Service latency measured from the intended send time, not from the actual one."""
        return self.end_ns - self.intended_ns

    @property
    def available(self) -> bool:
        return self.outcome in (Outcome.ACKED, Outcome.REJECTED)


OUTCOME_OF_VALUE = {outcome.value: outcome for outcome in Outcome}


@dataclass(frozen=True, slots=True)
class RequestBatch:
    """Requests that arrived together (one batch of the load master's), as rows of the
    fields of `RequestRecord` in order with the outcome as its value, each checked on
    arrival (`harness.load.wire`). Published once for the batch, so that at 10,000 requests/s
    the bus, its listeners and the history see a hundred events a second, not ten thousand
    records made only to be taken apart again; read as records, they are made as read."""

    rows: list[list[Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[RequestRecord]:
        for row in self.rows:
            yield RequestRecord(
                row[0], row[1], row[2], row[3], row[4], OUTCOME_OF_VALUE[row[5]],
                row[6], row[7], row[8], row[9],
            )  # fmt: skip


# The cluster of a member whose `raft:` block names none.
DEFAULT_CLUSTER = "engine"


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One answer (or non-answer) of a Raft member's status endpoint, stamped on arrival
    (and with when its request was sent)."""

    node: str
    arrival_ns: int
    reachable: bool
    role: str = "unreachable"
    term: int | None = None
    leader: str | None = None
    commit_index: int | None = None
    last_applied: int | None = None
    sent_ns: int | None = None
    role_age_ms: float | None = None  # how long the member says it has held `role`
    cluster: str = DEFAULT_CLUSTER  # the Raft cluster the member belongs to (raft.cluster)

    @property
    def round_trip_ns(self) -> int | None:
        return None if self.sent_ns is None else self.arrival_ns - self.sent_ns

    @property
    def observed_ns(self) -> int:
        """When the member was in the state it reports, best estimate: the middle of the
        request. It was in that state when it answered, after the request was sent and before
        the answer arrived; a member slow to answer (GIL, a busy new leader) would otherwise
        make every change look later by the whole delay."""
        if self.sent_ns is None:
            return self.arrival_ns
        return (self.sent_ns + self.arrival_ns) // 2


IN_FORCE_KEY = "in_force_ns"  # FaultEvent.detail of an applied fault


@dataclass(frozen=True, slots=True)
class FaultEvent:
    fault_index: int  # position in the scenario's fault list
    repeat: int  # 0 for the first application of a repeated fault
    fault_type: str
    phase: str  # "applied" | "healed" | "failed"
    at_ns: int  # when applying began (the kill's signal, the first rule)
    targets: tuple[str, ...] = ()
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def in_force_ns(self) -> int:
        """When applying ended: the fault is wholly in force from here (at_ns if unknown)."""
        value = self.detail.get(IN_FORCE_KEY)
        return value if isinstance(value, int) else self.at_ns


@dataclass(frozen=True, slots=True)
class PhaseMark:
    name: str  # "steady-before" | "load" | "faults-done" | "settled" | ...
    at_ns: int


@dataclass(frozen=True, slots=True)
class MetricSample:
    """A periodic probe value other than Raft status, e.g. Kafka consumer lag."""

    probe: str
    at_ns: int
    value: float | None
