"""The `hftchaos status` table: one row per service, read live from pids and endpoints."""

from __future__ import annotations

from typing import Any

import psutil
from rich.markup import escape
from rich.table import Table

from harness.backends.base import RaftRole
from harness.backends.health import check_health
from harness.raft import read_view
from harness.topology.model import RaftStatus
from harness.topology.plan import PlannedHealth

ROLE_STYLE = {
    RaftRole.LEADER: "bold green",
    RaftRole.FOLLOWER: "cyan",
    RaftRole.CANDIDATE: "yellow",
    RaftRole.UNREACHABLE: "red",
}


def _health_from_url(url: str) -> PlannedHealth:
    if url.startswith("tcp://"):
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        return PlannedHealth(http=None, tcp=(host, int(port)), timeout_s=1, interval_s=0.1)
    return PlannedHealth(http=url, tcp=None, timeout_s=1, interval_s=0.1)


def _process_state(pid: int) -> str:
    try:
        status = psutil.Process(pid).status()
    except psutil.Error:
        return "[red]gone[/]"
    if status == psutil.STATUS_STOPPED:
        return "[yellow]paused[/]"
    if status == psutil.STATUS_ZOMBIE:
        return "[red]exited[/]"
    return "[green]running[/]"


def status_table(state: dict[str, Any]) -> Table:
    # Everything in the state came from a topology file: escaped, never markup.
    table = Table(title=escape(f"topology {state.get('topology', '?')}"), header_style="bold")
    for column in ("service", "role", "pid", "process", "health", "raft", "term"):
        table.add_column(column, no_wrap=True)
    table.add_column("address", overflow="fold")
    for name, facts in state.get("services", {}).items():
        pid = int(facts["pid"])
        process = "finished" if facts.get("kind") == "job" else _process_state(pid)
        health = "-"
        if facts.get("health_url"):
            healthy = check_health(_health_from_url(facts["health_url"]))
            health = "[green]healthy[/]" if healthy else "[red]unhealthy[/]"
        raft, term = "-", "-"
        raft_status = _raft_status(facts)
        if raft_status is not None:
            view = read_view(name, raft_status)
            raft = f"[{ROLE_STYLE[view.role]}]{view.role.value}[/]"
            term = str(view.term) if view.term is not None else "-"
        ports = ", ".join(f"{port}={number}" for port, number in facts["ports"].items())
        address = f"{facts['host']} ({ports})" if ports else facts["host"]
        table.add_row(
            escape(name),
            escape(str(facts["role"])),
            str(pid),
            process,
            health,
            raft,
            term,
            escape(address),
        )
    return table


def _raft_status(facts: dict[str, Any]) -> RaftStatus | str | None:
    """The member's `raft:` block as `up` stored it (older state files: the status URL)."""
    stored = facts.get("raft_status")
    if isinstance(stored, dict):
        try:
            return RaftStatus.model_validate(stored)
        except ValueError:
            return None
    url = facts.get("raft_status_url")
    return url if isinstance(url, str) else None
