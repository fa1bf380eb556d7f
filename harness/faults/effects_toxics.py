"""Effects of Toxiproxy link faults: the toxic is listed on each link right after injection,
and bytes reached the toxic while it was there: what the proxy received in the toxic's
direction (from clients on the link's listen address for `upstream`, from the upstream server
for `downstream`). A toxic that held or slowed data still had it offered; a toxic on a link
nobody used acted on nothing. The bytes are the kernel's own per-socket counters (`ss -tinp`,
bytes_received of the proxy process's sockets), read through the backend's `SocketTable` where
the proxy's sockets live (a container has its own network namespace, which the host's table
does not show); Toxiproxy's byte metrics are updated only when a connection closes, so they
cannot see a kept-open connection. link_down instead: the proxy is disabled and its listen
address refuses a connection.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from harness.backends.base import SocketTable
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
from harness.faults.socket_counters import (
    Resolve,
    SocketBytes,
    bytes_between,
    endpoint_selector,
    parse_socket_bytes,
)
from harness.topology.plan import Plan
from harness.toxiproxy import ToxiproxyClient

CONNECT_TIMEOUT_S = 1.0


def host_resolver(plan: Plan, table: SocketTable) -> Resolve:
    """A proxy's configured host name -> the address of the service it names (where the
    proxy reaches it), from the plan and the backend: the names are only known in there."""

    def resolve(host: str) -> str | None:
        for name, service in plan.services.items():
            if host in (name, service.peer_host):
                return table.network_address(name)
        return None

    return resolve


def entry_selectors(
    listen: str, upstream: str, streams: list[str], resolve: Resolve, shared: bool = False
) -> list[list[str] | None]:
    """Where bytes enter the proxy in each direction the toxics act on: from clients on its
    listen address (`upstream`), from the server it dials (`downstream`). When another proxy
    dials the same upstream (`shared`), the sockets to it cannot be told apart by address, so
    that direction is not counted: judged by the other one, or not at all (None)."""
    entry = {"upstream": ("src", listen), "downstream": ("dst", upstream)}
    counted = [stream for stream in streams if not (shared and stream == "downstream")]
    if not counted:
        return [None]
    return [endpoint_selector(*entry[stream], resolve) for stream in counted]


def toxic_names(run_id: str, key: int, streams: list[str]) -> list[str]:
    """The names `_toxics.inject_toxic` gives the toxics of one application."""
    return [f"hftchaos-{run_id}-{key}-{stream}" for stream in streams]


def streams_of(fault: object) -> list[str]:
    stream = str(getattr(fault, "stream", "both"))
    return ["upstream", "downstream"] if stream == "both" else [stream]


@dataclass(frozen=True)
class ProxySockets:
    """The Toxiproxy service's sockets, read where they live (the backend's `SocketTable`)
    and kept to those its own process holds."""

    table: SocketTable
    service: str
    pid: int | None
    resolve: Resolve

    def read(self, selector: list[str] | None) -> SocketBytes | None:
        if selector is None:
            return None
        output = self.table.established_sockets(self.service, selector)
        return None if output is None else parse_socket_bytes(output, self.pid)


@dataclass
class ToxicWatch:
    client: ToxiproxyClient
    sockets: ProxySockets | None
    links: list[str]
    names: list[str]
    streams: list[str]
    listed: dict[str, list[str]] = field(default_factory=dict)
    selectors: dict[str, list[list[str] | None]] = field(default_factory=dict)
    before: dict[str, list[SocketBytes | None]] = field(default_factory=dict)

    def injected(self) -> None:
        proxies = self.client.proxies()
        for link in self.links:
            proxy = self.client.proxy(link)  # its toxics as they are now
            self.listed[link] = [t.name for t in proxy.toxics if t.name in self.names]
            resolve = self.sockets.resolve if self.sockets else lambda _host: None
            shared = any(
                other.upstream == proxy.upstream for name, other in proxies.items() if name != link
            )
            self.selectors[link] = entry_selectors(
                proxy.listen, proxy.upstream, self.streams, resolve, shared
            )
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
        if self.sockets is None:
            return [None for _ in self.selectors[link]]
        return [self.sockets.read(selector) for selector in self.selectors[link]]


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
            "the toxics were listed, but the proxy's bytes could not be counted: the "
            "kernel's socket counters could not be read where it runs (is `ss` installed, or "
            "nsenter for containers?), or only a direction whose upstream another link "
            "shares was faulted",
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
    return ToxicWatch(client, proxy_sockets(request), links, names, streams)


def proxy_sockets(request: EffectRequest) -> ProxySockets | None:
    """None when the backend cannot read a socket table, or no service is the proxy."""
    backend, plan = request.context.backend, request.context.plan
    if plan.toxiproxy is None or not isinstance(backend, SocketTable):
        return None
    pid = backend.facts(plan.toxiproxy).pid
    return ProxySockets(backend, plan.toxiproxy, pid, host_resolver(plan, backend))


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
