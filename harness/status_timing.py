"""How precise the leader probe can be: its own status round trips, per cluster. Pure.

An election is placed between the member's last answer as something else and its first answer
as leader; that bracket is about one status round trip plus one fast poll wide, so a slow
status endpoint (a sidecar, a POST that takes 40 ms) makes failover_ms that much less
certain. The run reports the bound and warns when it exceeds the precision the scenario asks
(`failover_precision_ms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.metrics import NS_PER_MS, percentile
from harness.probes import BURST_INTERVAL_S
from harness.records import ProbeSample

BURST_INTERVAL_MS = BURST_INTERVAL_S * 1000


@dataclass(frozen=True)
class ClusterTiming:
    cluster: str
    samples: int
    round_trip_p50_ms: float | None
    round_trip_p99_ms: float | None
    round_trip_max_ms: float | None

    @property
    def implied_error_ms(self) -> float | None:
        """The width of the bracket around an election at the p99 round trip."""
        if self.round_trip_p99_ms is None:
            return None
        return round(self.round_trip_p99_ms + BURST_INTERVAL_MS, 3)


def status_timing(samples: Sequence[ProbeSample]) -> list[ClusterTiming]:
    """Round trips of the answered status requests, per cluster (unanswered ones are timeouts
    of a member that is down, not the endpoint's speed)."""
    by_cluster: dict[str, list[float]] = {}
    for sample in samples:
        if sample.reachable and sample.round_trip_ns is not None:
            by_cluster.setdefault(sample.cluster, []).append(sample.round_trip_ns / NS_PER_MS)
    return [
        ClusterTiming(
            cluster,
            len(trips),
            _round(percentile(trips, 0.50)),
            _round(percentile(trips, 0.99)),
            _round(max(trips)),
        )
        for cluster, trips in sorted(by_cluster.items())
    ]


def precision_warnings(timings: Sequence[ClusterTiming], precision_ms: float) -> list[str]:
    warnings = []
    for timing in timings:
        bound = timing.implied_error_ms
        if bound is not None and bound > precision_ms:
            warnings.append(
                f"cluster {timing.cluster}: status round trip p99 {timing.round_trip_p99_ms} ms "
                f"makes failover_ms uncertain by up to {bound} ms, more than the "
                f"{precision_ms:g} ms the scenario asks (failover_precision_ms)"
            )
    return warnings


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
