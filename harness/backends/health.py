"""Health checks and readiness waits shared by every backend."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from harness.errors import HealthTimeoutError
from harness.raft import HttpLeaderLookup, leader_of
from harness.topology.model import RaftStatus
from harness.topology.plan import PlannedHealth

CHECK_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 5.0  # one run of a command check; a hung one counts as not healthy


def check_health(health: PlannedHealth) -> bool:
    if health.command is not None:
        return _command_succeeds(health.command)
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


def _command_succeeds(command: list[str]) -> bool:
    """One run of a command health check: an argument list, never a shell; its output is not
    wanted (it would fill a pipe), only its exit status."""
    try:
        completed = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


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
