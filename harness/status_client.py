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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    consumed: int  # bytes of the buffer this response took
    close: bool  # the server closes (or closed) the connection after it


def parse_response(buffer: bytes, at_eof: bool = False) -> Response | None:
    """The first whole response in `buffer`, or None while more bytes are needed; `at_eof`: the
    server has closed, so a body without a length ends here. Raises StatusHttpError for an
    answer that is not well-formed HTTP, or one that ended early. Pure, so the blocking client
    below and the probe's non-blocking poller read answers by the same rules."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise StatusHttpError(f"no end of headers within {MAX_HEAD_BYTES} bytes")
        return _incomplete(at_eof)
    status, headers = _parse_head(buffer[:head_end])
    start = head_end + 4
    close = headers.get("connection", "").lower() == "close"
    if status in BODILESS_STATUSES:
        return Response(status, b"", start, close)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunked = _parse_chunked(buffer, start)
        if chunked is None:
            return _incomplete(at_eof)
        body, end = chunked
        return Response(status, body, end, close)
    if "content-length" in headers:
        end = start + _content_length(headers["content-length"])
        if len(buffer) < end:
            return _incomplete(at_eof)
        return Response(status, buffer[start:end], end, close)
    if len(buffer) - start > MAX_BODY_BYTES:
        raise StatusHttpError(f"body over {MAX_BODY_BYTES} bytes")
    if not at_eof:
        return None  # delimited by the close
    return Response(status, buffer[start:], len(buffer), close=True)


def _incomplete(at_eof: bool) -> Response | None:
    """None (more bytes to come), or the error when the server has closed already."""
    if at_eof:
        raise StatusHttpError("connection closed by the server mid-answer")
    return None


def _parse_chunked(buffer: bytes, at: int) -> tuple[bytes, int] | None:
    """(body, end offset) of a chunked body starting at `at`, or None if not all there yet."""
    parts: list[bytes] = []
    total = 0
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            if len(buffer) - at > 1024:
                raise StatusHttpError("chunk size line over 1024 bytes")
            return None
        size_line = buffer[at:line_end].split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise StatusHttpError(f"bad chunk size {size_line!r}") from None
        at = line_end + 2
        if size == 0:
            return _after_trailers(buffer, at, b"".join(parts))
        total += size
        if total > MAX_BODY_BYTES:
            raise StatusHttpError(f"chunked body over {MAX_BODY_BYTES} bytes")
        if len(buffer) < at + size + 2:
            return None
        parts.append(buffer[at : at + size])
        if buffer[at + size : at + size + 2] != b"\r\n":
            raise StatusHttpError("chunk not followed by CRLF")
        at += size + 2


def _after_trailers(buffer: bytes, at: int, body: bytes) -> tuple[bytes, int] | None:
    """After the last chunk: an empty line ends the message, anything else is trailers."""
    if len(buffer) < at + 2:
        return None
    if buffer[at : at + 2] == b"\r\n":
        return body, at + 2
    end = buffer.find(b"\r\n\r\n", at)
    if end < 0:
        if len(buffer) - at > MAX_HEAD_BYTES:
            raise StatusHttpError(f"trailers over {MAX_HEAD_BYTES} bytes")
        return None
    return body, end + 4


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
        self.request = build_request(method, path, host, headers or {}, body)
        self._timeout_s = timeout_s
        self._socket: socket.socket | None = None

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

    def _exchange(self) -> tuple[int, bytes]:
        if self._socket is None:
            self._socket = socket.create_connection((self.host, self.port), self._timeout_s)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.sendall(self.request)
        buffer = b""
        at_eof = False
        while (response := parse_response(buffer, at_eof)) is None:
            data = self._socket.recv(65536)
            at_eof = not data
            buffer += data
        if response.close:
            self.close()
        return response.status, response.body


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
