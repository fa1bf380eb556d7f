"""Before a run with kernel network faults: does each targeted node's traffic use its own
address? Kernel rules match a node by its address; a program that does not bind its outgoing
connections (every peer connection from 127.0.0.1) slips past them, and its partition or packet
loss then does nothing. The sockets are read from the kernel (psutil, i.e. /proc/PID/net/tcp
matched to the process's file descriptors), for the service's process and its children.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from harness.socket_table import repair_inet_ntop

SHARED_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ForeignConnection:
    local: str  # ip:port the connection comes from
    remote: str


def foreign_connections(pid: int, host: str) -> list[ForeignConnection]:
    """Established TCP connections of `pid` (and its children) not from `host`."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    found: list[ForeignConnection] = []
    repair_inet_ntop()
    for process in processes:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for connection in connections:
            if connection.status != psutil.CONN_ESTABLISHED or not connection.raddr:
                continue
            if connection.laddr.ip != host:
                found.append(
                    ForeignConnection(
                        f"{connection.laddr.ip}:{connection.laddr.port}",
                        f"{connection.raddr.ip}:{connection.raddr.port}",
                    )
                )
    return found


def source_warnings(nodes: Iterable[tuple[str, str, int | None]]) -> list[str]:
    """One warning per (name, host, pid) whose connections do not all come from its host."""
    warnings = []
    for name, host, pid in nodes:
        if pid is None or host == SHARED_HOST:
            continue  # a shared address is refused by the kernel faults themselves
        foreign = foreign_connections(pid, host)
        if foreign:
            shown = ", ".join(f"{c.local} -> {c.remote}" for c in foreign[:3])
            warnings.append(
                f"{name}: {len(foreign)} of its connections do not come from its own address "
                f"{host} ({shown}); kernel faults on {host} will not see that traffic"
            )
    return warnings
