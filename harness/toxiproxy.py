"""A typed client for the Toxiproxy 2.x HTTP API (stdlib only).

The harness starts the server itself (its process supervisor runs the `toxiproxy` service):

    toxiproxy-server -host 127.0.0.1 -port 8474     # API address; proxies listen where created

Other server options: `-config FILE` (proxies to create at start), `-seed N` (toxicity dice),
`-version`. The LOG_LEVEL environment variable (trace, debug, info, warn, error) sets the log
level; unset, 2.12 logs every connection at trace level to stdout.

Why not the PyPI package `toxiproxy-python` (0.1.1): it keeps the API address in class
attributes (one server per process), sets no request timeouts, turns a 500 from the server into
a KeyError, and toggles proxies with POST, which 2.12 logs as deprecated. This client has one
instance per server, a timeout on every request, and raises BackendError with the server's own
message.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from harness.errors import BackendError, HealthTimeoutError
from harness.netaddr import url_address, url_host

Stream = Literal["upstream", "downstream"]
STREAMS: tuple[Stream, ...] = ("upstream", "downstream")


@dataclass(frozen=True)
class Toxic:
    """One toxic on one direction of a proxy.

    `stream` is the direction it acts on: "upstream" is client -> server, "downstream" is
    server -> client. `toxicity` is the probability (0..1) that a connection gets it.
    Types and their attributes (Toxiproxy 2.12): latency {latency ms, jitter ms},
    bandwidth {rate KB/s}, slow_close {delay ms}, timeout {timeout ms, 0 = forever},
    reset_peer {timeout ms}, slicer {average_size, size_variation, delay us},
    limit_data {bytes}.
    """

    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int | float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Toxic:
        stream = data.get("stream", "downstream")
        if stream not in STREAMS:
            raise BackendError(f"toxiproxy returned a toxic with stream {stream!r}")
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=cast(Stream, stream),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str  # host:port the proxy accepts on (the real port when created with :0)
    upstream: str  # host:port it forwards to
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProxyInfo:
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data["enabled"]),
            toxics=tuple(Toxic.from_json(toxic) for toxic in data.get("toxics") or ()),
        )


class ToxiproxyClient:
    """Talks to one Toxiproxy server. `api` is "http://host:port" or "host:port"."""

    def __init__(self, api: str, timeout_s: float = 5.0) -> None:
        parsed = urllib.parse.urlsplit(api if "://" in api else f"http://{url_address(api)}")
        if parsed.scheme != "http" or parsed.hostname is None or parsed.port is None:
            raise BackendError(f"toxiproxy API address {api!r} is not http://host:port")
        self.api = f"http://{url_host(parsed.hostname)}:{parsed.port}"
        self._host, self._port = parsed.hostname, parsed.port
        self._timeout_s = timeout_s

    # -- server ---------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version, e.g. "2.12.0" ("git" for an unstamped `go install` build)."""
        reply = self._call("GET", "/version")
        if isinstance(reply, dict):
            return str(reply.get("version", ""))
        return str(reply).strip()  # servers before 2.6 answer with plain text

    def wait_ready(self, deadline_s: float) -> str:
        """Poll until the API answers, for at most `deadline_s` seconds; returns the version."""
        give_up_ns = time.monotonic_ns() + int(deadline_s * 1e9)
        while True:
            try:
                return self.version()
            except BackendError as error:
                if time.monotonic_ns() >= give_up_ns:
                    raise HealthTimeoutError(
                        f"toxiproxy API at {self.api} not ready within {deadline_s:g}s: {error}"
                    ) from None
            time.sleep(0.05)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    # -- proxies --------------------------------------------------------------------------

    def create_proxy(
        self, name: str, listen: str, upstream: str, enabled: bool = True
    ) -> ProxyInfo:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyInfo.from_json(self._object("POST", "/proxies", body))

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", _proxy_path(name))

    def proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._object("GET", _proxy_path(name)))

    def proxies(self) -> dict[str, ProxyInfo]:
        listing = self._object("GET", "/proxies")
        return {name: ProxyInfo.from_json(data) for name, data in sorted(listing.items())}

    def set_enabled(self, name: str, enabled: bool) -> ProxyInfo:
        """Disabling closes the listener and every open connection: clients see refusals."""
        return ProxyInfo.from_json(self._object("PATCH", _proxy_path(name), {"enabled": enabled}))

    # -- toxics ---------------------------------------------------------------------------

    def add_toxic(self, proxy: str, toxic: Toxic) -> None:
        self._call("POST", f"{_proxy_path(proxy)}/toxics", toxic.to_json())

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"{_proxy_path(proxy)}/toxics/{_quote(name)}")

    def toxics(self, proxy: str) -> dict[str, Toxic]:
        listing = self._call("GET", f"{_proxy_path(proxy)}/toxics")
        if not isinstance(listing, list):
            raise BackendError(f"toxiproxy {self.api}: toxics of {proxy} is not a list")
        return {toxic.name: toxic for toxic in map(Toxic.from_json, listing)}

    # -- HTTP -----------------------------------------------------------------------------

    def _object(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        reply = self._call(method, path, body)
        if not isinstance(reply, dict):
            raise BackendError(f"toxiproxy {method} {path}: expected a JSON object, got {reply!r}")
        return reply

    def _call(self, method: str, path: str, body: object = None) -> Any:
        """One request on a fresh connection; the decoded reply, or BackendError."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        try:
            connection.request(method, path, payload, headers)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise BackendError(f"toxiproxy API at {self.api} unreachable: {reason}") from None
        finally:
            connection.close()
        text = raw.decode(errors="replace")
        try:
            reply = json.loads(text) if text.strip() else None
        except ValueError:
            reply = text
        if status >= 400:
            message = reply.get("error", text) if isinstance(reply, dict) else text.strip()
            raise BackendError(f"toxiproxy {method} {path}: {message} (HTTP {status})")
        return reply


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _proxy_path(name: str) -> str:
    return f"/proxies/{_quote(name)}"
