"""Recovery figures computed from a run's recorded history. Pure functions, no I/O.

Definitions (also in scenarios/README.md):
- failover_ms: from the injection of a fault whose targets included the leader of a Raft
  cluster, to the first probe sample in which a member of that cluster (the old leader too)
  reports itself leader in a newer term (it won a majority vote for that term). None when no
  fault removed a leader. Each failover keeps its error bound (ElectionEstimate).
- leaderless_ms: see harness/leadership.py (every loss, with or without a fault).
- first_commit_ms: from that injection to the end of the first acknowledged order that was
  answered after the new leader appeared.
- downtime_ms: total time the order path was unavailable. A run of consecutive failed requests
  (error or unknown outcome, in intended-send order) makes one outage, lasting from the first
  failure's intended send time to the next successful request's intended send time.
- recovery_ms: from injection to the start of the first window of `window_s` whose requests
  meet the steady-state tolerance (success rate and p99 latency from intended send time).
  recovery_from_heal_ms: the same, measured from the fault's heal.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from harness.records import DEFAULT_CLUSTER, FaultEvent, Outcome, ProbeSample, RequestRecord
from harness.request_log import OUTCOME_OF_CODE, RequestLog, as_log

if TYPE_CHECKING:  # leadership builds on this module's election estimate
    import numpy as np
    import numpy.typing as npt

    from harness.leadership import LeadershipLoss

NS_PER_MS = 1_000_000
# How long after a new leader's first answer its quicker answers are looked for.
ELECTION_REFINE_WINDOW_NS = 200 * NS_PER_MS


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of unsorted values (None for no values)."""
    if not values:
        return None
    return nearest_rank(sorted(values), fraction)


def nearest_rank(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of values already sorted (at least one)."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None

    @staticmethod
    def of(requests: Iterable[RequestRecord]) -> LatencySummary:
        """Over the acknowledged requests, latency from the intended send."""
        import numpy as np  # here: a command refusing a bad file does not pay for it

        if isinstance(requests, RequestLog):
            numbers = requests.numbers()
            return LatencySummary.of_latencies_ns(
                numbers.latency_ns[numbers.outcome_is(Outcome.ACKED)]
            )
        acked = (r.latency_ns for r in requests if r.outcome is Outcome.ACKED)
        return LatencySummary.of_latencies_ns(np.fromiter(acked, dtype=np.int64))

    @staticmethod
    def of_latencies_ns(latencies_ns: npt.NDArray[np.signedinteger[Any]]) -> LatencySummary:
        if len(latencies_ns) == 0:
            return LatencySummary(0, None, None, None, None, None)
        # Ranked as integers, divided after: the same figures as ranking the milliseconds.
        # Sorted in place (every caller passes a copy of its own): a second copy of a long
        # run's latencies would be the largest thing judging holds.
        ordered = latencies_ns
        ordered.sort()

        def ms(fraction: float) -> float:
            return int(nearest_rank(ordered, fraction)) / NS_PER_MS  # type: ignore[arg-type]

        return LatencySummary(
            count=len(ordered),
            p50_ms=ms(0.50),
            p90_ms=ms(0.90),
            p99_ms=ms(0.99),
            p999_ms=ms(0.999),
            max_ms=int(ordered[-1]) / NS_PER_MS,
        )


@dataclass(frozen=True)
class Failover:
    fault_index: int
    repeat: int
    old_leader: str
    old_term: int | None
    injected_ns: int
    new_leader: str | None = None
    elected_ns: int | None = None
    first_commit_ns: int | None = None
    # How elected_ns was placed; None when no new leader was seen.
    election: ElectionEstimate | None = None
    cluster: str = DEFAULT_CLUSTER

    @property
    def error_bound_ms(self) -> float | None:
        """How far elected_ns can be from the election: see ElectionEstimate.error_bound_ns."""
        return None if self.election is None else self.election.error_bound_ns / NS_PER_MS

    @property
    def failover_ms(self) -> float | None:
        if self.elected_ns is None:
            return None
        return (self.elected_ns - self.injected_ns) / NS_PER_MS

    @property
    def first_commit_ms(self) -> float | None:
        if self.first_commit_ns is None:
            return None
        return (self.first_commit_ns - self.injected_ns) / NS_PER_MS


def find_failover(
    injection: FaultEvent,
    old_leader: str,
    old_term: int | None,
    samples: Sequence[ProbeSample],
    requests: Sequence[RequestRecord],
    cluster: str = DEFAULT_CLUSTER,
) -> Failover:
    """The first sample of the cluster after the injection in which a member (the old leader
    too) leads in a newer term, and when it became leader: see `election_ns`."""
    elected: ProbeSample | None = None
    for sample in samples:
        if sample.arrival_ns < injection.at_ns or sample.role != "leader":
            continue
        if sample.cluster != cluster:
            continue
        # A newer term is a new election, won by the old leader too (every loss counts);
        # without the old term, only another member leading shows one.
        if (old_term is not None and sample.term is not None and sample.term > old_term) or (
            old_term is None and sample.node != old_leader
        ):
            elected = sample
            break
    if elected is None:
        return Failover(
            injection.fault_index,
            injection.repeat,
            old_leader,
            old_term,
            injection.at_ns,
            cluster=cluster,
        )
    estimate = estimate_election(elected, samples, injection.at_ns)
    elected_ns = estimate.chosen_ns
    first_commit = min(
        (r.end_ns for r in requests if r.outcome is Outcome.ACKED and r.end_ns >= elected_ns),
        default=None,
    )
    return Failover(
        injection.fault_index,
        injection.repeat,
        old_leader,
        old_term,
        injection.at_ns,
        elected.node,
        elected_ns,
        first_commit,
        estimate,
        cluster,
    )


@dataclass(frozen=True)
class ElectionEstimate:
    """Two ways of placing an election on the harness's clock, kept apart so that each can be
    checked against an independent reference (tests/integration/test_failover_agreement.py).

    mid_request_ns: the middle of the first probe request that found the new leader leading,
    or found a follower naming it (outside-in; off by up to half that request's round trip).
    role_age_ns: the quickest answer in the same term minus the role age the member reported
    (a duration on its own clock); None when the member reports no age or when the result
    disagrees with what the probe saw from outside.
    bracketed: the member's own answers bracket the election (an answer as something else,
    then the first as leader). Without a role age, the election is then placed at the middle
    of that bracket: nothing says where inside it the switch happened, and the middle is off
    by at most half its width. The first leading request's middle is late by up to the whole
    gap when the answer before it was slow (NATS's /raftz can stall ~20 ms as the member
    switches, tests/examples/test_nats_failover.py); when the bracket starts at the fault
    (the member was not seen otherwise since), mid_request is kept."""

    mid_request_ns: int
    role_age_ns: int | None
    # The probe's own bracket: the election happened after `earliest_ns` (the fault, or the
    # member's last answer as something else was sent) and before `latest_ns` (its first
    # answer as leader arrived, or a follower's naming it, if sooner). Either estimate is off
    # by at most the bracket's width.
    earliest_ns: int = 0
    latest_ns: int = 0
    bracketed: bool = False

    @property
    def bracket_middle_ns(self) -> int:
        return (self.earliest_ns + self.latest_ns) // 2

    @property
    def error_bound_ns(self) -> int:
        """The election lies in [earliest_ns, latest_ns]: the chosen instant is off by at
        most its distance to the farther end. A slow status endpoint widens this."""
        chosen = self.chosen_ns
        return max(chosen - self.earliest_ns, self.latest_ns - chosen, 0)

    @property
    def chosen_ns(self) -> int:
        if self.role_age_ns is not None:
            return self.role_age_ns
        return self.bracket_middle_ns if self.bracketed else self.mid_request_ns

    @property
    def estimator(self) -> Estimator:
        if self.role_age_ns is not None:
            return ROLE_AGE
        return BRACKET_MIDDLE if self.bracketed else MID_REQUEST


Estimator = Literal["role_age", "mid_request", "bracket_middle"]
ROLE_AGE: Final = "role_age"
MID_REQUEST: Final = "mid_request"
BRACKET_MIDDLE: Final = "bracket_middle"


def election_ns(first: ProbeSample, samples: Sequence[ProbeSample], not_before_ns: int) -> int:
    """When `first`'s member became leader, on the harness's clock: see `estimate_election`."""
    return estimate_election(first, samples, not_before_ns).chosen_ns


def estimate_election(
    first: ProbeSample, samples: Sequence[ProbeSample], not_before_ns: int
) -> ElectionEstimate:
    """When `first`'s member became leader, both ways (see `ElectionEstimate`).

    The role-age estimate takes, of the member's answers in the same term within
    ELECTION_REFINE_WINDOW_NS, the quickest one, minus the age it reported. It is kept only
    if what the probe saw from outside agrees: after `not_before_ns` (the fault), after the
    member's last answer as something else was sent, and before the first answer as leader
    arrived."""
    seen_otherwise = [
        sample.sent_ns
        for sample in samples
        if sample.node == first.node
        and sample.cluster == first.cluster
        and sample.reachable
        and sample.sent_ns is not None
        and sample.arrival_ns < first.arrival_ns
        and (sample.role != "leader" or sample.term != first.term)
    ]
    earliest = max([not_before_ns, *seen_otherwise])
    # The first answers that show the new leader: its own, and its followers' naming it.
    showing = [first, *_named_leader_by_others(first, samples, earliest)]
    latest = min(sample.arrival_ns for sample in showing)
    estimate = _role_age_estimate(first, samples)
    if estimate is not None and not earliest <= estimate <= latest:
        estimate = None
    return ElectionEstimate(
        mid_request_ns=min(sample.observed_ns for sample in showing),
        role_age_ns=estimate,
        earliest_ns=earliest,
        latest_ns=latest,
        bracketed=bool(seen_otherwise) and max(seen_otherwise) >= not_before_ns,
    )


def _named_leader_by_others(
    first: ProbeSample, samples: Sequence[ProbeSample], earliest_ns: int
) -> list[ProbeSample]:
    """Other members' answers, arrived before `first`, naming its member their leader in its
    term. A member learns of a leader only from the leader's own messages, sent after it won, so
    each such arrival bounds the election from above; the leader's own status endpoint can
    stall as it switches (etcd, NATS: 15-25 ms) while a follower's still answers quickly."""
    return [
        sample
        for sample in samples
        if sample.node != first.node
        and sample.cluster == first.cluster
        and sample.reachable
        and sample.leader == first.node
        and sample.term is not None
        and sample.term == first.term
        and earliest_ns <= sample.arrival_ns < first.arrival_ns
    ]


def _role_age_estimate(first: ProbeSample, samples: Sequence[ProbeSample]) -> int | None:
    candidates = [
        sample
        for sample in samples
        if sample.node == first.node
        and sample.role == "leader"
        and sample.term == first.term
        and sample.role_age_ms is not None
        and sample.round_trip_ns is not None
        and first.arrival_ns <= sample.arrival_ns <= first.arrival_ns + ELECTION_REFINE_WINDOW_NS
    ]
    if not candidates:
        return None
    quickest = min(candidates, key=lambda sample: sample.round_trip_ns or 0)
    assert quickest.role_age_ms is not None
    return quickest.observed_ns - int(quickest.role_age_ms * NS_PER_MS)


def outages(requests: Sequence[RequestRecord]) -> list[tuple[int, int]]:
    """Intervals [start_ns, end_ns) when the order path was unavailable (see module doc).

    An outage still open at the end of the run ends at the last failure's answer."""
    import numpy as np

    numbers = as_log(requests).in_intended_order().numbers()
    failed = ~numbers.available()
    if not failed.any():
        return []
    # +1 where a run of failures begins, -1 at the first success after one.
    edges = np.diff(failed.astype(np.int8), prepend=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    intended = numbers.intended_ns
    intervals = [(int(intended[s]), int(intended[e])) for s, e in zip(starts, ends, strict=False)]
    if len(starts) > len(ends):  # still out at the end of the run
        outage_start = int(intended[starts[-1]])
        last_failure_end = int((intended[failed] + numbers.latency_ns[failed]).max())
        intervals.append((outage_start, max(last_failure_end, outage_start)))
    return intervals


def downtime_ms(requests: Sequence[RequestRecord]) -> float:
    return sum(end - start for start, end in outages(requests)) / NS_PER_MS


@dataclass(frozen=True)
class Tolerance:
    window_ns: int
    success_rate_min: float
    latency_p99_ms_max: float
    min_requests: int = 1


class _SlidingWindow:
    """The requests of a window that only moves forward, with what health needs kept up to date
    as requests enter and leave: each window costs a few list operations rather than a pass
    over its requests (at 1,000/s a 1.5 s window holds 1,500 of them, and a run that never
    recovers tries a window at every request: a 30-kill bench spent over 15 minutes here)."""

    def __init__(self) -> None:
        self.size = 0
        self._available_latencies_ms: list[float] = []  # sorted

    def enter(self, available: bool, latency_ms: float) -> None:
        self.size += 1
        if available:
            bisect.insort(self._available_latencies_ms, latency_ms)

    def leave(self, available: bool, latency_ms: float) -> None:
        self.size -= 1
        if available:
            latencies = self._available_latencies_ms
            del latencies[bisect.bisect_left(latencies, latency_ms)]

    def healthy(self, tolerance: Tolerance) -> bool:
        if self.size < tolerance.min_requests or self.size == 0:
            return False
        latencies = self._available_latencies_ms
        if len(latencies) / self.size < tolerance.success_rate_min or not latencies:
            return False
        return nearest_rank(latencies, 0.99) <= tolerance.latency_p99_ms_max


def recovered_at(
    requests: Sequence[RequestRecord], since_ns: int, tolerance: Tolerance
) -> int | None:
    """Start of the first healthy window that begins at or after `since_ns` (None: never).

    Windows start at request intended times, so the answer has the load's resolution."""
    import numpy as np

    numbers = as_log(requests).in_intended_order().numbers()
    starts, count = numbers.intended_ns, len(numbers.intended_ns)
    available, latency_ns = numbers.available(), numbers.latency_ns
    first = int(np.searchsorted(starts, since_ns, side="left"))
    last_intended = int(starts[-1]) if count else 0
    window = _SlidingWindow()
    stop = first  # the window is requests[index:stop]
    for index in range(first, count):
        window_start = int(starts[index])
        window_end = window_start + tolerance.window_ns
        if window_end > last_intended:
            return None  # not enough run left to see a whole window
        if index > first:
            window.leave(bool(available[index - 1]), int(latency_ns[index - 1]) / NS_PER_MS)
        while stop < count and starts[stop] < window_end:
            window.enter(bool(available[stop]), int(latency_ns[stop]) / NS_PER_MS)
            stop += 1
        if window.healthy(tolerance):
            return window_start
    return None


def error_counts(requests: Sequence[RequestRecord]) -> dict[str, int]:
    """Requests not acknowledged, by outcome and the words of their reason."""
    import numpy as np

    numbers = as_log(requests).numbers()
    not_acked = ~numbers.outcome_is(Outcome.ACKED)
    # One key per (outcome, reason) pair: the distinct pairs are few, the requests many.
    width = len(numbers.reasons) + 1
    keys = numbers.outcome_codes[not_acked].astype(np.int64) * width + numbers.reason_codes[
        not_acked
    ].astype(np.int64)
    counts: Counter[str] = Counter()
    for key, how_many in zip(*np.unique(keys, return_counts=True), strict=True):
        outcome, reason_text = OUTCOME_OF_CODE[int(key) // width], numbers.reasons[int(key) % width]
        # Group by the reason's words: addresses and numbers differ between requests.
        reason = re.sub(r"[\d.:]+\d", "#", reason_text)[:60] if reason_text else ""
        counts[f"{outcome.value}:{reason}" if reason else outcome.value] += int(how_many)
    return dict(counts)


@dataclass
class PhaseLatency:
    before: LatencySummary
    during: LatencySummary
    after: LatencySummary


def latency_by_phase(
    requests: Sequence[RequestRecord], first_fault_ns: int | None, recovered_ns: int | None
) -> PhaseLatency:
    """Before the first fault, from it until recovery (or the end), and after recovery."""
    import numpy as np

    if first_fault_ns is None:
        return PhaseLatency(
            LatencySummary.of(requests), LatencySummary.of([]), LatencySummary.of([])
        )
    numbers = as_log(requests).numbers()
    acked, intended = numbers.outcome_is(Outcome.ACKED), numbers.intended_ns
    before = intended < first_fault_ns
    after = intended >= recovered_ns if recovered_ns is not None else np.zeros_like(before)

    def summary(chosen: npt.NDArray[np.bool_]) -> LatencySummary:
        return LatencySummary.of_latencies_ns(numbers.latency_ns[acked & chosen])

    return PhaseLatency(
        before=summary(before), during=summary(~before & ~after), after=summary(after)
    )


@dataclass(frozen=True)
class Recovery:
    """When the system recovered from one applied fault, on the run's monotonic clock."""

    fault_index: int
    repeat: int
    injected_ns: int
    healed_ns: int | None  # None: not healed within the recorded history
    recovered_ns: int | None  # None: never recovered within the run
    # False when the fault was applied again before the system recovered (a flapping link):
    # the episode's recovery counts from its last heal, not from this one.
    counts_from_heal: bool = True

    @property
    def recovery_ms(self) -> float | None:
        if self.recovered_ns is None:
            return None
        return (self.recovered_ns - self.injected_ns) / NS_PER_MS

    @property
    def recovery_from_heal_ms(self) -> float | None:
        if self.recovered_ns is None or self.healed_ns is None or not self.counts_from_heal:
            return None
        return max(0.0, (self.recovered_ns - self.healed_ns) / NS_PER_MS)


@dataclass
class RunMetrics:
    """Every figure of one run; `values()` is what SLOs are judged against."""

    requests: int
    error_rate: float
    unknown_outcomes: int
    downtime_ms: float
    failovers: list[Failover] = field(default_factory=list)
    recovery_ms: float | None = None
    recovery_from_heal_ms: float | None = None
    latency: PhaseLatency | None = None
    overall: LatencySummary | None = None
    errors: dict[str, int] = field(default_factory=dict)
    kafka_lag_max: float | None = None
    recoveries: list[Recovery] = field(default_factory=list)  # one per applied fault
    # The boundaries of latency_by_phase: the first injection and the latest recovery.
    first_fault_ns: int | None = None
    recovered_ns: int | None = None
    # Every leadership loss of every cluster (harness/leadership.py), with or without a fault.
    leadership_losses: list[LeadershipLoss] = field(default_factory=list)

    @property
    def leaderless_ms(self) -> float | None:
        """The longest leadership loss that ended; None when no loss ended."""
        values = [ms for loss in self.leadership_losses if (ms := loss.leaderless_ms) is not None]
        return max(values) if values else None

    @property
    def failover_ms(self) -> float | None:
        values = [f.failover_ms for f in self.failovers]
        if not values or any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    @property
    def first_commit_ms(self) -> float | None:
        values = [f.first_commit_ms for f in self.failovers]
        if not values or any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    def values(self) -> dict[str, float | None]:
        overall = self.overall or LatencySummary.of([])
        return {
            "failover_ms": self.failover_ms,
            "first_commit_ms": self.first_commit_ms,
            "recovery_ms": self.recovery_ms,
            "recovery_from_heal_ms": self.recovery_from_heal_ms,
            "downtime_ms": self.downtime_ms,
            "error_rate": self.error_rate,
            "unknown_outcomes": float(self.unknown_outcomes),
            "latency_p50_ms": overall.p50_ms,
            "latency_p99_ms": overall.p99_ms,
            "latency_p999_ms": overall.p999_ms,
            "latency_max_ms": overall.max_ms,
            "kafka_lag_max": self.kafka_lag_max,
            "leaderless_ms": self.leaderless_ms,
        }
