"""Watching the Raft clusters after the load, while the harness reads back the acknowledged
orders and collects the final state: the instrument's own reads load the system too.

The final-state collection of a long run reads hundreds of thousands of orders from every
node; a page that held a node's interpreter too long once let another node take the
leadership, and with the probe already stopped the harness saw it only as a replica one
entry behind, from the engines' own logs. So the leader probe keeps running until the
collection is over, its samples from then on kept out of the history (no figure of the run
is computed from them) and watched only for a rise of a cluster's Raft term: an election
with no fault in force and no load, which the run's summary then names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.metrics import NS_PER_MS
from harness.records import ProbeSample


@dataclass(frozen=True)
class TermRise:
    """A cluster's term rising after the load: from the highest term before it, to the
    highest since; who reported the first rise, when."""

    cluster: str
    term_before: int
    term_after: int
    node: str  # the member that reported it
    after_load_ms: float  # from the diversion (the end of the load and its healing) to it

    @property
    def warning(self) -> str:
        return (
            f"cluster {self.cluster}: an election after the load, while the harness read the "
            f"acknowledged orders back and collected the final state (term {self.term_before} "
            f"-> {self.term_after}, first reported by {self.node} {self.after_load_ms:.0f} ms "
            "after the load ended): no fault was in force, so the harness's own reads, or an "
            "election of the system's own, moved it; a replica found behind in the final state "
            "may be this election's, not lost data"
        )


class ProbeSink:
    """Where the leader probe's samples go: to the run's history until `divert`, then only
    watched for term rises."""

    def __init__(self, publish: Callable[[ProbeSample], None]) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._terms: dict[str, int] = {}  # cluster -> highest term reported so far
        self._diverted_ns: int | None = None
        self._rises: dict[str, TermRise] = {}

    def __call__(self, sample: ProbeSample) -> None:
        with self._lock:
            diverted_ns = self._diverted_ns
            before = self._terms.get(sample.cluster)
            if sample.term is not None and (before is None or sample.term > before):
                self._terms[sample.cluster] = sample.term
                if diverted_ns is not None and before is not None:
                    first = self._rises.get(sample.cluster)
                    self._rises[sample.cluster] = (
                        replace(first, term_after=sample.term)
                        if first is not None
                        else TermRise(
                            sample.cluster,
                            before,
                            sample.term,
                            sample.node,
                            (sample.arrival_ns - diverted_ns) / NS_PER_MS,
                        )
                    )
        if diverted_ns is None:
            self._publish(sample)

    def divert(self, at_ns: int) -> None:
        """From now on samples stay out of the history."""
        with self._lock:
            self._diverted_ns = at_ns

    def term_rises(self) -> list[TermRise]:
        """Each cluster's first term rise after `divert`, in cluster order."""
        with self._lock:
            return [self._rises[cluster] for cluster in sorted(self._rises)]
