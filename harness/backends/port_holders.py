"""Who holds a port: said when a service ends before it is healthy, so that a service that
could not bind its address names the process in its way (seen, rarely, in CI: "cannot bind
the Raft address" on a port the plan had kept reserved until the spawn). Sockets that are
only bound are asked of the kernel apart (harness/backends/bound_sockets.py): /proc/net/tcp
leaves them out, so until stop 13 this said "nobody" when such a socket was in the way."""

from __future__ import annotations

from collections.abc import Iterable

import psutil

from harness.backends.bound_sockets import bound_inactive, owners
from harness.socket_table import repair_inet_ntop

WILDCARDS = ("0.0.0.0", "::")


def port_holders(host: str, ports: Iterable[int]) -> list[str]:
    """`ip:port STATUS pid N (name)` for each TCP socket on one of `ports` at `host` or a
    wildcard address; empty when none; a line saying so when the TCP table cannot be read."""
    wanted = set(ports)
    repair_inet_ntop()
    found = []
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError) as error:
        # Said, not swallowed: "no holder" must mean none was found, not that none was looked at.
        connections = []
        found.append(f"(the kernel's TCP table could not be read: {error})")
    for connection in connections:
        address = connection.laddr
        if not address or address.port not in wanted or address.ip not in (host, *WILDCARDS):
            continue
        found.append(f"{address.ip}:{address.port} {connection.status} {_owner(connection.pid)}")
    bound = [
        entry
        for entry in bound_inactive()
        if entry.port in wanted and entry.address in (host, *WILDCARDS)
    ]
    holders = owners({entry.inode for entry in bound}) if bound else {}
    for entry in bound:
        owner = _owner(holders.get(entry.inode))
        found.append(f"{entry.address}:{entry.port} BOUND (not listening) {owner}")
    return sorted(found)


def _owner(pid: int | None) -> str:
    if pid is None:
        return "(no process found)"
    try:
        return f"pid {pid} ({psutil.Process(pid).name()})"
    except psutil.Error:
        return f"pid {pid}"
