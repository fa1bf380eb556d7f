"""Health checks and readiness waits shared by every backend."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from harness.errors import HealthTimeoutError
from harness.raft import HttpLeaderLookup, leader_of
from harness.topology.model import RaftStatus
from harness.topology.plan import PlannedHealth

CHECK_TIMEOUT_S = 1.0


def check_health(health: PlannedHealth) -> bool:
    if health.http:
        try:
            with urllib.request.urlopen(health.http, timeout=CHECK_TIMEOUT_S) as response:
                return 200 <= int(response.status) < 300
        except (OSError, urllib.error.URLError, ValueError):
            return False
    assert health.tcp is not None
    try:
        with socket.create_connection(health.tcp, timeout=CHECK_TIMEOUT_S):
            return True
    except OSError:
        return False


def wait_for_raft_leader(statuses: Mapping[str, str | RaftStatus], timeout_s: float) -> str:
    """Wait until one member of a cluster leads and a majority of its members agree on it (a
    member whose status names no leader agrees when it is the leader itself)."""
    lookup = HttpLeaderLookup(statuses)
    deadline = time.monotonic() + timeout_s
    while True:
        views = lookup.raft_views()
        leader = leader_of(views)
        agreeing = sum(
            1
            for view in views.values()
            if view.leader == leader or (view.leader is None and view.node == leader)
        )
        if leader is not None and agreeing * 2 > len(views):
            return leader
        if time.monotonic() > deadline:
            summary = ", ".join(f"{v.node}={v.role.value}" for v in views.values())
            raise HealthTimeoutError(
                f"no Raft leader with a majority after {timeout_s:.0f}s ({summary})"
            )
        time.sleep(0.05)
