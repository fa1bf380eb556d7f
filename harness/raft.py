"""Read Raft members' own status endpoints: who leads, in which term, how far committed.

This is the `LeaderLookup` ability for any system whose members serve JSON with at least
`role`, `term` and `leader` (the reference engine's GET /status does).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from harness.backends.base import RaftRole, RaftView

STATUS_TIMEOUT_S = 0.5


def fetch_json(url: str, timeout_s: float = STATUS_TIMEOUT_S) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


def read_view(node: str, url: str, timeout_s: float = STATUS_TIMEOUT_S) -> RaftView:
    try:
        status = fetch_json(url, timeout_s)
        role = RaftRole(str(status["role"]))
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return RaftView(node=node, role=RaftRole.UNREACHABLE)
    return RaftView(
        node=node,
        role=role,
        term=_int_or_none(status.get("term")),
        leader=status.get("leader"),
        commit_index=_int_or_none(status.get("commit_index")),
    )


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def leader_of(views: Mapping[str, RaftView]) -> str | None:
    """The self-declared leader with the highest term: an isolated old leader may still claim
    leadership in an older term until it notices (PySyncObj's leaderFallbackTimeout)."""
    leaders = [v for v in views.values() if v.role is RaftRole.LEADER]
    if not leaders:
        return None
    return max(leaders, key=lambda view: view.term or -1).node


class HttpLeaderLookup:
    def __init__(self, status_urls: Mapping[str, str]) -> None:
        self.status_urls = dict(status_urls)

    def raft_views(self) -> dict[str, RaftView]:
        return {node: read_view(node, url) for node, url in self.status_urls.items()}

    def leader(self) -> str | None:
        return leader_of(self.raft_views())
