"""Probes: threads that sample the system at a fixed cadence and publish what they see.

The leader probe keeps one persistent connection per Raft member (of every cluster) and polls
each member's status every few milliseconds. Members asked over HTTP are polled from one
thread over non-blocking sockets (`status_poller.py`: measured about a quarter less CPU than a
thread per member); a member asked by a command has a thread of its own.
Either way a paused or partitioned member never delays the samples of the others. Samples are
stamped when they arrive, with when their request was sent: the round trip bounds the probe's
own error.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from harness.backends.base import RaftRole, RaftView
from harness.raft import (
    StatusSource,
    fetch_json,
    leader_of,
    legacy_status,
    member_ids,
    members_by_cluster,
)
from harness.records import DEFAULT_CLUSTER, MetricSample, ProbeSample
from harness.status_adapter import MemberAnswer
from harness.status_poller import PollTarget, StatusPoller
from harness.topology.model import RaftStatus

DEFAULT_INTERVAL_S = 0.005
# While an election is under way (the leader went away and no newer leader has shown up yet),
# members are polled this often, so failover_ms is not rounded up by the steady cadence. The
# burst lasts one election, a few hundred ms, and never longer than BURST_MAX_S (a cluster's
# raft.election_max_ms, for systems whose elections take longer).
BURST_INTERVAL_S = 0.001
BURST_MAX_S = 3.0
# A follower whose answers carry `role_age_ms`, in a cluster whose leader is answering in the
# same term, is polled this many times less often. An election it wins is placed by that stamp,
# not by when the probe saw it (metrics.estimate_election), and the leader's own answers, still
# polled at the full cadence, are what show a loss first (its role or term changes, or it stops
# answering) and start a burst. At the reference's 5 ms that is 25 ms, about the status round
# trip under 1,000 orders/s; the samples were most of the harness's CPU during a run.
RELAXED_FOLLOWER_FACTOR = 5


def relaxed(sample: ProbeSample, cluster_latest: Sequence[ProbeSample]) -> bool:
    """May this member's next poll wait longer (see RELAXED_FOLLOWER_FACTOR)?"""
    if not sample.reachable or sample.role != "follower" or sample.role_age_ms is None:
        return False
    return any(
        other.node != sample.node
        and other.reachable
        and other.role == "leader"
        and other.term == sample.term
        for other in cluster_latest
    )


def sample_from_answer(
    node: str,
    arrival_ns: int,
    answer: MemberAnswer | None,
    leader: str | None,
    sent_ns: int | None = None,
    cluster: str = DEFAULT_CLUSTER,
) -> ProbeSample:
    """A probe sample from a member's answer; `leader` is the leader as a service name."""
    if answer is None:
        return ProbeSample(
            node=node, arrival_ns=arrival_ns, reachable=False, sent_ns=sent_ns, cluster=cluster
        )
    return ProbeSample(
        node=node,
        arrival_ns=arrival_ns,
        reachable=True,
        role=answer.role,
        term=answer.term,
        leader=leader,
        commit_index=answer.commit_index,
        last_applied=answer.last_applied,
        sent_ns=sent_ns,
        role_age_ms=answer.role_age_ms,
        cluster=cluster,
    )


class ElectionWatch:
    """Says when the probe should poll fast: from the moment a leader stops being one (its
    samples fail, or it reports another role) until a member reports leadership in a newer
    term, or BURST_MAX_S has passed. Only transitions start a burst, so a member that stays
    unreachable (killed, cut off) does not keep the probe fast. One per Raft cluster."""

    def __init__(self, burst_max_s: float = BURST_MAX_S) -> None:
        self._lost_term: int | None = None
        self._since_ns = 0
        self._burst_max_ns = burst_max_s * 1e9

    def observe(self, previous: ProbeSample | None, sample: ProbeSample) -> bool:
        if self._lost_term is not None:
            leads = sample.reachable and sample.role == "leader"
            newer_leader = leads and (sample.term or 0) > self._lost_term
            expired = sample.arrival_ns - self._since_ns > self._burst_max_ns
            if newer_leader or expired:
                self._lost_term = None
        was_leader = previous is not None and previous.reachable and previous.role == "leader"
        still_leader = sample.reachable and sample.role == "leader"
        if was_leader and not still_leader and self._lost_term is None:
            assert previous is not None
            self._lost_term = previous.term or 0
            self._since_ns = sample.arrival_ns
        return self._lost_term is not None


def _as_status(status: str | RaftStatus) -> RaftStatus:
    return legacy_status(status) if isinstance(status, str) else status


class LeaderProbe:
    """Samples every member of every Raft cluster; also the run's `LeaderLookup` (latest
    samples) and `ClusterLeaders`. Each member is polled at its own `raft.interval_ms`
    (`interval_s` overrides it for all), faster during an election in its cluster, and a
    follower that reports its role's age more slowly while its leader answers (`relaxed`)."""

    def __init__(
        self,
        statuses: Mapping[str, str | RaftStatus],
        publish: Callable[[ProbeSample], None],
        interval_s: float | None = None,
    ) -> None:
        self.statuses = {node: _as_status(status) for node, status in statuses.items()}
        self._publish = publish
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._latest: dict[str, ProbeSample] = {}
        self._lock = threading.Lock()
        self._members = members_by_cluster(self.statuses)
        self._ids = member_ids(self.statuses)
        self._elections = {
            cluster: ElectionWatch(max(self.statuses[m].election_max_ms for m in members) / 1000)
            for cluster, members in self._members.items()
        }
        self._sources = {node: StatusSource(status) for node, status in self.statuses.items()}
        http_targets = {
            node: PollTarget(source.http_request, source.timeout_s)
            for node, source in self._sources.items()
            if source.http_request is not None
        }
        self._poller = StatusPoller(http_targets, self._on_http_answer) if http_targets else None
        self._threads = [
            threading.Thread(target=self._poll, args=(node,), name=f"probe-{node}", daemon=True)
            for node in self.statuses
            if node not in http_targets
        ]

    def start(self) -> None:
        if self._poller is not None:
            self._poller.start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.stop()
        for thread in self._threads:
            thread.join(timeout=2)
        for source in self._sources.values():
            source.close()

    def _period_s(self, node: str) -> float:
        if self._interval_s is not None:
            return self._interval_s
        return self.statuses[node].interval_ms / 1000

    def _on_http_answer(
        self, node: str, sent_ns: int, arrival_ns: int, code: int | None, body: bytes | None
    ) -> float:
        return self._record(node, sent_ns, arrival_ns, self._sources[node].answer_of(code, body))

    def _record(
        self, node: str, sent_ns: int, arrival_ns: int, answer: MemberAnswer | None
    ) -> float:
        """Publishes the sample; the interval until this member's next poll is due."""
        status = self.statuses[node]
        ids = self._ids[status.cluster]
        if answer is not None:
            ids.learn(node, answer.own_id)
        leader = ids.service_of(answer.leader_ref) if answer else None
        sample = sample_from_answer(node, arrival_ns, answer, leader, sent_ns, status.cluster)
        with self._lock:
            previous = self._latest.get(node)
            self._latest[node] = sample
            bursting = self._elections[status.cluster].observe(previous, sample)
            cluster_latest = [
                latest
                for member in self._members[status.cluster]
                if (latest := self._latest.get(member)) is not None
            ]
        self._publish(sample)
        period_s = self._period_s(node)
        if bursting:
            # Never poll faster during a burst than the member's own period allows.
            return min(period_s, BURST_INTERVAL_S)
        if self._interval_s is None and relaxed(sample, cluster_latest):
            return period_s * RELAXED_FOLLOWER_FACTOR
        return period_s

    def _poll(self, node: str) -> None:
        """A member asked by a command, on its own thread (a command blocks)."""
        source = self._sources[node]
        next_due = time.monotonic()
        while not self._stop.is_set():
            sent_ns = time.monotonic_ns()
            answer = source.read()
            next_due += self._record(node, sent_ns, time.monotonic_ns(), answer)
            delay = next_due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_due = time.monotonic()  # fell behind (a slow member): do not burst

    # -- LeaderLookup and ClusterLeaders -------------------------------------------------------

    def raft_views(self) -> dict[str, RaftView]:
        with self._lock:
            latest = dict(self._latest)
        views = {}
        for node in self.statuses:
            sample = latest.get(node)
            if sample is None or not sample.reachable:
                views[node] = RaftView(node=node, role=RaftRole.UNREACHABLE)
                continue
            try:
                role = RaftRole(sample.role)
            except ValueError:
                role = RaftRole.UNREACHABLE
            views[node] = RaftView(node, role, sample.term, sample.leader, sample.commit_index)
        return views

    def leader(self) -> str | None:
        """The leader of the first cluster (the only one in most topologies)."""
        clusters = list(self._members)
        return self.cluster_leader(clusters[0]) if clusters else None

    def clusters(self) -> dict[str, list[str]]:
        return {cluster: list(members) for cluster, members in self._members.items()}

    def cluster_leader(self, cluster: str) -> str | None:
        members = set(self._members.get(cluster, []))
        views = self.raft_views()
        return leader_of({node: view for node, view in views.items() if node in members})


class PeriodicProbe:
    """Calls `measure()` every `interval_s` and publishes the value (None = no answer)."""

    def __init__(
        self,
        name: str,
        measure: Callable[[], float | None],
        publish: Callable[[MetricSample], None],
        interval_s: float = 0.25,
    ) -> None:
        self.name = name
        self._measure = measure
        self._publish = publish
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self._measure()
            except Exception:  # a probe that cannot measure reports "no answer"
                value = None
            self._publish(MetricSample(self.name, time.monotonic_ns(), value))
            self._stop.wait(self._interval_s)


def kafka_lag_measure(consumer_status_url: str) -> Callable[[], float | None]:
    def measure() -> float | None:
        status = fetch_json(consumer_status_url)
        lag = status.get("lag") if isinstance(status, dict) else None
        return float(lag) if isinstance(lag, int | float) else None

    return measure


def http_status_measure(url: str) -> Callable[[], float | None]:
    """The HTTP status code of a GET (None when there is no answer)."""

    def measure() -> float | None:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=1
        )
        try:
            connection.request("GET", parts.path or "/")
            return float(connection.getresponse().status)
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    return measure
