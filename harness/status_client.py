"""Send one status request (GET, or POST with a body) over and over on one keep-alive HTTP/1.1
connection, cheaply.

The leader probe sends a few hundred status requests a second per Raft member. `http.client`
parses every response's headers with the `email` package, which made the probe the harness's
largest CPU cost on the 2-core reference machine: CPU the system under test then lacked. This
client writes one prebuilt request and reads the answer itself; it understands Content-Length,
chunked and close-delimited bodies, which covers any status endpoint a target may expose.
See benchmarks/http_handler_cost.py for the measured difference.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
BODILESS_STATUSES = frozenset({204, 304})


class StatusHttpError(Exception):
    """The answer was not a well-formed HTTP response (the connection is dropped)."""


def build_request(
    method: str, path: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The request's bytes, built once. Header names and values come from the topology file:
    a CR or LF in one would smuggle a second header or request, so it is refused."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n") or ":" in name:
            raise ValueError(f"header {name!r}: no CR, LF or ':' in a name, no CR or LF in a value")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (body or b"")


class KeepAliveRequest:
    def __init__(
        self,
        url: str,
        timeout_s: float,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"{self.host}:{self.port}"
        self._request = build_request(method, path, host, headers or {}, body)
        self._timeout_s = timeout_s
        self._socket: socket.socket | None = None
        self._buffer = b""

    def get(self) -> tuple[int, bytes]:
        """(status code, body). Raises OSError or StatusHttpError; either way the connection is
        closed and the next call reconnects."""
        try:
            return self._exchange()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._buffer = b""

    def _exchange(self) -> tuple[int, bytes]:
        if self._socket is None:
            self._socket = socket.create_connection((self.host, self.port), self._timeout_s)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.sendall(self._request)
        head = self._read_until(b"\r\n\r\n", MAX_HEAD_BYTES)
        status, headers = _parse_head(head)
        if status in BODILESS_STATUSES:
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exactly(_content_length(headers["content-length"]))
        else:
            body = self._read_to_close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def _receive(self) -> None:
        assert self._socket is not None
        data = self._socket.recv(65536)
        if not data:
            raise StatusHttpError("connection closed by the server mid-answer")
        self._buffer += data

    def _read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            end = self._buffer.find(marker)
            if end >= 0:
                found, self._buffer = self._buffer[:end], self._buffer[end + len(marker) :]
                return found
            if len(self._buffer) > limit:
                raise StatusHttpError(f"no {marker!r} within {limit} bytes")
            self._receive()

    def _read_exactly(self, length: int) -> bytes:
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self._read_until(b"\r\n", 1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise StatusHttpError(f"bad chunk size {size_line!r}") from None
            if size == 0:
                if self._trailers_follow():
                    self._read_until(b"\r\n\r\n", MAX_HEAD_BYTES)
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise StatusHttpError(f"chunked body over {MAX_BODY_BYTES} bytes")
            parts.append(self._read_exactly(size))
            if self._read_exactly(2) != b"\r\n":
                raise StatusHttpError("chunk not followed by CRLF")

    def _trailers_follow(self) -> bool:
        """After the last chunk: an empty line ends the message, anything else is trailers."""
        while len(self._buffer) < 2:
            self._receive()
        if self._buffer.startswith(b"\r\n"):
            self._buffer = self._buffer[2:]
            return False
        return True

    def _read_to_close(self) -> bytes:
        assert self._socket is not None
        while True:
            data = self._socket.recv(65536)
            if not data:
                body = self._buffer
                self.close()
                return body
            self._buffer += data
            if len(self._buffer) > MAX_BODY_BYTES:
                raise StatusHttpError(f"body over {MAX_BODY_BYTES} bytes")


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("iso-8859-1").split("\r\n")
    words = lines[0].split(" ", 2)
    if len(words) < 2 or not words[0].startswith("HTTP/1.") or not words[1].isdigit():
        raise StatusHttpError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise StatusHttpError(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    return int(words[1]), headers


def _content_length(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_BODY_BYTES:
        raise StatusHttpError(f"unusable Content-Length {text!r}")
    return int(text)
