"""Probes: threads that sample the system at a fixed cadence and publish what they see.

The leader probe keeps one persistent connection per Raft member and polls each member's
status every few milliseconds, each member on its own thread so that a paused or partitioned
member never delays the samples of the others. Samples are stamped when they arrive.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from harness.backends.base import RaftRole, RaftView
from harness.raft import fetch_json, leader_of
from harness.records import MetricSample, ProbeSample
from harness.status_client import KeepAliveGet, StatusHttpError

DEFAULT_INTERVAL_S = 0.005
# While an election is under way (the leader went away and no newer leader has shown up yet),
# members are polled this often, so failover_ms is not rounded up by the steady cadence. The
# burst lasts one election, a few hundred ms, and never longer than BURST_MAX_S.
BURST_INTERVAL_S = 0.001
BURST_MAX_S = 3.0
REQUEST_TIMEOUT_S = 0.25


class _StatusPoller:
    """GET one status URL over one keep-alive connection, reconnecting after failures."""

    def __init__(self, url: str) -> None:
        self._client = KeepAliveGet(url, REQUEST_TIMEOUT_S)

    def get(self) -> dict[str, object] | None:
        try:
            status, body = self._client.get()
            if status != 200:
                return None
            parsed = json.loads(body)
        except (OSError, StatusHttpError, ValueError):
            return None
        return parsed if isinstance(parsed, dict) else None

    def close(self) -> None:
        self._client.close()


def sample_from_status(
    node: str,
    arrival_ns: int,
    status: Mapping[str, object] | None,
    sent_ns: int | None = None,
) -> ProbeSample:
    if status is None:
        return ProbeSample(node=node, arrival_ns=arrival_ns, reachable=False, sent_ns=sent_ns)

    def integer(key: str) -> int | None:
        value = status.get(key)
        return value if isinstance(value, int) else None

    leader = status.get("leader")
    return ProbeSample(
        node=node,
        arrival_ns=arrival_ns,
        reachable=True,
        role=str(status.get("role", "unknown")),
        term=integer("term"),
        leader=leader if isinstance(leader, str) else None,
        commit_index=integer("commit_index"),
        last_applied=integer("last_applied"),
        sent_ns=sent_ns,
        role_age_ms=_number(status.get("role_age_ms")),
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


class ElectionWatch:
    """Says when the probe should poll fast: from the moment a leader stops being one (its
    samples fail, or it reports another role) until a member reports leadership in a newer
    term, or BURST_MAX_S has passed. Only transitions start a burst, so a member that stays
    unreachable (killed, cut off) does not keep the probe fast."""

    def __init__(self) -> None:
        self._lost_term: int | None = None
        self._since_ns = 0

    def observe(self, previous: ProbeSample | None, sample: ProbeSample) -> bool:
        if self._lost_term is not None:
            leads = sample.reachable and sample.role == "leader"
            newer_leader = leads and (sample.term or 0) > self._lost_term
            expired = sample.arrival_ns - self._since_ns > BURST_MAX_S * 1e9
            if newer_leader or expired:
                self._lost_term = None
        was_leader = previous is not None and previous.reachable and previous.role == "leader"
        still_leader = sample.reachable and sample.role == "leader"
        if was_leader and not still_leader and self._lost_term is None:
            assert previous is not None
            self._lost_term = previous.term or 0
            self._since_ns = sample.arrival_ns
        return self._lost_term is not None


class LeaderProbe:
    """Samples every Raft member; also serves as the run's `LeaderLookup` (latest samples)."""

    def __init__(
        self,
        status_urls: Mapping[str, str],
        publish: Callable[[ProbeSample], None],
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.status_urls = dict(status_urls)
        self._publish = publish
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._latest: dict[str, ProbeSample] = {}
        self._lock = threading.Lock()
        self._election = ElectionWatch()
        self._threads = [
            threading.Thread(target=self._poll, args=(node, url), name=f"probe-{node}", daemon=True)
            for node, url in self.status_urls.items()
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def _poll(self, node: str, url: str) -> None:
        poller = _StatusPoller(url)
        next_due = time.monotonic()
        try:
            while not self._stop.is_set():
                sent_ns = time.monotonic_ns()
                status = poller.get()
                sample = sample_from_status(node, time.monotonic_ns(), status, sent_ns)
                with self._lock:
                    previous = self._latest.get(node)
                    self._latest[node] = sample
                    bursting = self._election.observe(previous, sample)
                self._publish(sample)
                next_due += BURST_INTERVAL_S if bursting else self._interval_s
                delay = next_due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_due = time.monotonic()  # fell behind (a slow member): do not burst
        finally:
            poller.close()

    # -- LeaderLookup --------------------------------------------------------------------------

    def raft_views(self) -> dict[str, RaftView]:
        with self._lock:
            latest = dict(self._latest)
        views = {}
        for node in self.status_urls:
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
        return leader_of(self.raft_views())


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
