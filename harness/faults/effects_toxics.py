"""Effects of Toxiproxy link faults: the toxic is listed on each link right after injection,
and bytes reached the toxic while it was there: what the proxy received in the toxic's
direction (from clients on the link's listen address for `upstream`, from the upstream server
for `downstream`). A toxic that held or slowed data still had it offered; a toxic on a link
nobody used acted on nothing. The bytes are the kernel's own per-socket counters (`ss -tinp`,
bytes_received of the proxy process's sockets); Toxiproxy's byte metrics are updated only when
a connection closes, so they cannot see a kept-open connection. link_down instead: the proxy is
disabled and its listen address refuses a connection.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

from harness.faults.effects import (
    Effect,
    EffectRequest,
    EffectStatus,
    EffectWatch,
    Observed,
    effective,
    not_effective,
    unverified,
)
from harness.toxiproxy import ToxiproxyClient

CONNECT_TIMEOUT_S = 1.0
SS_TIMEOUT_S = 5.0
_SOCKET_LINE = re.compile(r"^\S+\s+\S+\s+(?P<local>\S+)\s+(?P<peer>\S+)(?P<rest>.*)$")
_RECEIVED = re.compile(r"\bbytes_received:(\d+)")
# (local address, peer address) of one connection -> bytes the proxy has received on it.
SocketBytes = dict[tuple[str, str], int]


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


def socket_bytes(selector: list[str], pid: int | None) -> SocketBytes | None:
    """Received bytes of the established connections `selector` picks (`src A` or `dst A`),
    owned by `pid`; None when `ss` cannot tell."""
    if shutil.which("ss") is None:
        return None
    command = ["ss", "-Htinp", "state", "established", *selector]
    result = subprocess.run(command, capture_output=True, text=True, timeout=SS_TIMEOUT_S)
    return parse_socket_bytes(result.stdout, pid) if result.returncode == 0 else None


def bytes_between(before: SocketBytes, after: SocketBytes) -> int:
    """Bytes from one reading to the next; a connection new since (or reopened on the same
    ports with smaller counters) counts whole."""
    return sum(
        count - before.get(key, 0) if count >= before.get(key, 0) else count
        for key, count in after.items()
    )


def toxic_names(run_id: str, key: int, streams: list[str]) -> list[str]:
    """The names `_toxics.inject_toxic` gives the toxics of one application."""
    return [f"hftchaos-{run_id}-{key}-{stream}" for stream in streams]


def streams_of(fault: object) -> list[str]:
    stream = str(getattr(fault, "stream", "both"))
    return ["upstream", "downstream"] if stream == "both" else [stream]


@dataclass
class ToxicWatch:
    client: ToxiproxyClient
    proxy_pid: int | None
    links: list[str]
    names: list[str]
    streams: list[str]
    listed: dict[str, list[str]] = field(default_factory=dict)
    selectors: dict[str, list[list[str]]] = field(default_factory=dict)
    before: dict[str, list[SocketBytes | None]] = field(default_factory=dict)

    def injected(self) -> None:
        for link in self.links:
            proxy = self.client.proxy(link)
            self.listed[link] = [t.name for t in proxy.toxics if t.name in self.names]
            # Where bytes enter the proxy in each direction the toxics act on.
            entry = {"upstream": ["src", proxy.listen], "downstream": ["dst", proxy.upstream]}
            self.selectors[link] = [entry[stream] for stream in self.streams]
            self.before[link] = self._read(link)

    def judge(self) -> Effect:
        through: dict[str, int | None] = {}
        for link in self.links:
            pairs = list(zip(self.before.get(link, []), self._read(link), strict=False))
            known = pairs and all(a is not None and b is not None for a, b in pairs)
            through[link] = (
                sum(bytes_between(a or {}, b or {}) for a, b in pairs) if known else None
            )
        return judge_toxics(self.links, self.names, self.listed, through)

    def _read(self, link: str) -> list[SocketBytes | None]:
        return [socket_bytes(selector, self.proxy_pid) for selector in self.selectors[link]]


def judge_toxics(
    links: list[str],
    names: list[str],
    listed: dict[str, list[str]],
    through: dict[str, int | None],
) -> Effect:
    """Pure: every link listed every toxic, and bytes went through each in its direction."""
    evidence: dict[str, object] = {"toxics_listed": listed, "bytes_in": through}
    missing = {link: sorted(set(names) - set(listed.get(link, []))) for link in links}
    missing = {link: gone for link, gone in missing.items() if gone}
    if missing or not links:
        return not_effective(
            f"toxics not listed on their links after injection: {missing}", **evidence
        )
    if any(count is None for count in through.values()):
        return unverified(
            "the toxics were listed, but the kernel's socket counters could not "
            "be read (is `ss` installed?)",
            **evidence,
        )
    idle = [link for link, count in through.items() if not count]
    if idle:
        return not_effective(
            f"no byte went through {idle} in the toxic's direction while it was on", **evidence
        )
    total = sum(count or 0 for count in through.values())
    return effective(f"toxics listed; {total} bytes reached them", **evidence)


def watch_toxic(request: EffectRequest) -> EffectWatch:
    client = request.context.toxiproxy
    if client is None:
        return Observed(lambda: unverified("the topology has no Toxiproxy to ask"))
    links = list(request.active.targets)
    streams = streams_of(request.fault)
    names = toxic_names(request.context.run_id, request.key, streams)
    plan = request.context.plan
    proxy_pid = request.context.backend.facts(plan.toxiproxy).pid if plan.toxiproxy else None
    return ToxicWatch(client, proxy_pid, links, names, streams)


def link_refused(client: ToxiproxyClient, link: str) -> Effect:
    proxy = client.proxy(link)
    host, _, port = proxy.listen.rpartition(":")
    evidence: dict[str, object] = {"enabled": proxy.enabled, "listen": proxy.listen}
    if proxy.enabled:
        return not_effective(f"proxy {link} is still enabled", **evidence)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            return not_effective(f"{proxy.listen} still accepts connections", **evidence)
    except OSError as error:
        evidence["connect"] = error.strerror or str(error)
    return effective(f"proxy {link} disabled and {proxy.listen} refuses connections", **evidence)


def watch_link_down(request: EffectRequest) -> EffectWatch:
    client = request.context.toxiproxy
    if client is None:
        return Observed(lambda: unverified("the topology has no Toxiproxy to ask"))

    def look() -> Effect:
        for link in request.active.targets:
            effect = link_refused(client, link)
            if effect.status is not EffectStatus.EFFECTIVE:
                return effect
        return effective("every link refuses connections", links=list(request.active.targets))

    return Observed(look)
