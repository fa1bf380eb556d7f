"""Read Raft members' own status: who leads, in which term, how far committed.

Each member's `raft:` block (`RaftStatus`) says how to ask (HTTP GET or POST on a keep-alive
connection, or a command run per poll) and how to read the answer (`harness.status_adapter`).
The reference engine's GET /status needs no mapping: its JSON has `role`, `term` and `leader`.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from harness.backends.base import RaftRole, RaftView
from harness.status_adapter import MemberAnswer, MemberIds, read_answer
from harness.status_client import KeepAliveRequest, StatusHttpError
from harness.topology.model import RaftStatus

STATUS_TIMEOUT_S = 0.5
MAX_COMMAND_OUTPUT_BYTES = 4 * 1024 * 1024


def fetch_json(url: str, timeout_s: float = STATUS_TIMEOUT_S) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


class StatusSource:
    """One member's status, asked the way its `raft:` block says; `fetch` gives the answer's
    bytes or None (no answer, an HTTP status other than 2xx, a command that failed)."""

    def __init__(self, status: RaftStatus, timeout_s: float | None = None) -> None:
        self.status = status
        self._timeout_s = timeout_s if timeout_s is not None else status.timeout_ms / 1000
        self._http: KeepAliveRequest | None = None
        if status.url is not None:
            body = status.body.encode("utf-8") if status.body is not None else None
            self._http = KeepAliveRequest(
                status.url, self._timeout_s, status.method, body, status.headers
            )

    @property
    def http_request(self) -> KeepAliveRequest | None:
        """The request an HTTP member is asked with (None for a command)."""
        return self._http

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    def answer_of(self, code: int | None, body: bytes | None) -> MemberAnswer | None:
        """The member's answer from an HTTP exchange made elsewhere (the probe's poller)."""
        if code is None or body is None or not 200 <= code < 300:
            return None
        return read_answer(self.status, body)

    def fetch(self) -> bytes | None:
        if self._http is not None:
            try:
                code, body = self._http.get()
            except (OSError, StatusHttpError):
                return None
            return body if 200 <= code < 300 else None
        return self._run_command()

    def _run_command(self) -> bytes | None:
        assert self.status.command is not None
        try:
            # An argument list, never a shell: the topology's text is data.
            done = subprocess.run(
                self.status.command,
                capture_output=True,
                timeout=self._timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0 or len(done.stdout) > MAX_COMMAND_OUTPUT_BYTES:
            return None
        return done.stdout

    def read(self) -> MemberAnswer | None:
        body = self.fetch()
        return None if body is None else read_answer(self.status, body)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def view_of(node: str, answer: MemberAnswer | None, ids: MemberIds | None) -> RaftView:
    if answer is None or answer.role not in {role.value for role in RaftRole}:
        return RaftView(node=node, role=RaftRole.UNREACHABLE)
    leader = ids.service_of(answer.leader_ref) if ids else answer.leader_ref
    return RaftView(node, RaftRole(answer.role), answer.term, leader, answer.commit_index)


def legacy_status(url: str) -> RaftStatus:
    """The reference shape: GET `url`, JSON with role, term and leader (a service name)."""
    return RaftStatus(url=url)


def read_view(node: str, url: str | RaftStatus, timeout_s: float = STATUS_TIMEOUT_S) -> RaftView:
    source = StatusSource(legacy_status(url) if isinstance(url, str) else url, timeout_s)
    try:
        return view_of(node, source.read(), None)
    finally:
        source.close()


def leader_of(views: Mapping[str, RaftView]) -> str | None:
    """The self-declared leader with the highest term: an isolated old leader may still claim
    leadership in an older term until it notices (PySyncObj's leaderFallbackTimeout)."""
    leaders = [v for v in views.values() if v.role is RaftRole.LEADER]
    if not leaders:
        return None
    return max(leaders, key=lambda view: view.term or -1).node


@runtime_checkable
class ClusterLeaders(Protocol):
    """A leader lookup that knows the topology's Raft clusters (LeaderProbe does)."""

    def clusters(self) -> dict[str, list[str]]:
        """Cluster name -> its members' service names."""

    def cluster_leader(self, cluster: str) -> str | None: ...


def members_by_cluster(statuses: Mapping[str, RaftStatus]) -> dict[str, list[str]]:
    clusters: dict[str, list[str]] = {}
    for node, status in statuses.items():
        clusters.setdefault(status.cluster, []).append(node)
    return clusters


def member_ids(statuses: Mapping[str, RaftStatus]) -> dict[str, MemberIds]:
    """One id map per cluster, seeded with the ids the topology declares."""
    ids = {}
    for cluster, members in members_by_cluster(statuses).items():
        declared = {n: i for n in members if (i := statuses[n].member_id) is not None}
        ids[cluster] = MemberIds(members, declared)
    return ids


class HttpLeaderLookup:
    """Reads every member once per call (no thread): for `up`, `status` and tests."""

    def __init__(self, statuses: Mapping[str, str | RaftStatus]) -> None:
        self.statuses = {
            node: legacy_status(status) if isinstance(status, str) else status
            for node, status in statuses.items()
        }
        self._ids = member_ids(self.statuses)

    def raft_views(self) -> dict[str, RaftView]:
        views = {}
        for node, status in self.statuses.items():
            source = StatusSource(status, STATUS_TIMEOUT_S)
            try:
                answer = source.read()
            finally:
                source.close()
            ids = self._ids[status.cluster]
            if answer is not None:
                ids.learn(node, answer.own_id)
            views[node] = view_of(node, answer, ids)
        return views

    def leader(self) -> str | None:
        return leader_of(self.raft_views())
