"""The kernel's per-socket byte counters (`ss -Htinp state established ...`): reading them,
optionally from inside another network namespace, and the pure parts around it (the filter
that picks a proxy's sockets, the parse, the difference of two readings).

Why `ss` and not psutil: only the kernel's TCP info (`-i`) carries `bytes_received`, and it
counts data on a connection that stays open, which Toxiproxy's own metrics do not.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence

from harness.netaddr import url_host

SS_TIMEOUT_S = 5.0
ESTABLISHED = ("-Htinp", "state", "established")
_SOCKET_LINE = re.compile(r"^\S+\s+\S+\s+(?P<local>\S+)\s+(?P<peer>\S+)(?P<rest>.*)$")
_RECEIVED = re.compile(r"\bbytes_received:(\d+)")
_UNSPECIFIED = {"", "0.0.0.0", "::"}
# (local address, peer address) of one connection -> bytes received on it.
SocketBytes = dict[tuple[str, str], int]
# A host name (as a proxy was configured with it) -> its address, or None when unknown.
Resolve = Callable[[str], str | None]


def read_established(selector: Sequence[str], enter: Sequence[str] = ()) -> str | None:
    """`ss -Htinp state established <selector>`, run after the `enter` prefix (`nsenter -t
    PID -n`: that network namespace, with the host's /proc, so `-p` names host pids); None
    when `ss` (or the prefix's program) is missing or fails."""
    if shutil.which("ss") is None or (enter and shutil.which(enter[0]) is None):
        return None
    command = [*enter, "ss", *ESTABLISHED, *selector]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SS_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def parse_socket_bytes(ss_output: str, pid: int | None) -> SocketBytes:
    """`ss -Htinp` output -> bytes received per connection, of process `pid` (any if None)."""
    counts: SocketBytes = {}
    current: tuple[str, str] | None = None
    for line in ss_output.splitlines():
        match = _SOCKET_LINE.match(line)
        if match is not None:
            owned = pid is None or f"pid={pid}," in match.group("rest")
            current = (match.group("local"), match.group("peer")) if owned else None
            continue
        received = _RECEIVED.search(line)
        if current is not None and received is not None:
            counts[current] = int(received.group(1))
    return counts


def bytes_between(before: SocketBytes, after: SocketBytes) -> int:
    """Bytes from one reading to the next; a connection new since (or reopened on the same
    ports with smaller counters) counts whole."""
    return sum(
        count - before.get(key, 0) if count >= before.get(key, 0) else count
        for key, count in after.items()
    )


def endpoint_selector(side: str, address: str, resolve: Resolve) -> list[str] | None:
    """The `ss` filter for connections whose `side` ("src": local, "dst": peer) end is
    `address` (`host:port` as Toxiproxy reports it). A wildcard host matches by port alone
    (an accepted socket carries the real address, never 0.0.0.0); a name, which `ss` would
    resolve on the host if at all, is resolved by `resolve`; None when it cannot be."""
    if side not in ("src", "dst"):
        raise ValueError(f"side must be src or dst, got {side!r}")
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        return None
    if host in _UNSPECIFIED:
        return [f"{side[0]}port", "=", f":{port}"]
    try:
        literal: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        literal = resolve(host)
    return None if literal is None else [side, f"{url_host(literal)}:{port}"]
