"""A lean HTTP/1.1 keep-alive client: one connection, one request at a time.

It is the load worker's hot path. A general client (Locust's FastHttpSession, geventhttpclient)
spends 2-4 times the CPU per request on URL building, header objects, cookies and events that a
load path does not need (`benchmarks/load_path.py`); this one writes a request from a
prepared head and reads the reply with two `find`s. Replies must carry Content-Length (the
reference gateway and nginx do); anything else is an error for that request, and the
connection is dropped after any error, so the next request starts on a fresh one.

A request is never retried: the server may have acted on it, so a failed request is recorded as
such (outcome unknown), never sent twice. Uses the `socket` module as found: gevent's in the
worker, which monkey-patches it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from harness.netaddr import url_host

HEADER_END = b"\r\n\r\n"
MAX_HEAD_BYTES = 64 * 1024
READ_BYTES = 65536


class ReplyError(Exception):
    """The exchange failed; the text says how (it goes into the record's reason)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


class KeepAlivePost:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._host_line = f" HTTP/1.1\r\nHost: {url_host(host)}:{port}\r\n".encode()
        self._head = self._host_line + b"Content-Type: application/json\r\nContent-Length: "
        self._socket: socket.socket | None = None
        self._buffer = b""

    def post(self, path: str, body: bytes) -> Reply:
        """Raises ReplyError when no whole reply came (and drops the connection)."""
        request = b"".join(
            (b"POST ", path.encode(), self._head, str(len(body)).encode(), HEADER_END, body)
        )
        return self._exchange(request)

    def send(self, method: str, path: str, headers: bytes, body: bytes) -> Reply:
        """Any method; `headers`: whole header lines, each ending in CRLF (the declarative
        profiles' own, Content-Type among them)."""
        request = b"".join(
            (method.encode(), b" ", path.encode(), self._host_line, headers,
             b"Content-Length: ", str(len(body)).encode(), HEADER_END, body)
        )  # fmt: skip
        return self._exchange(request)

    def _exchange(self, request: bytes) -> Reply:
        try:
            connection = self._socket or self._connect()
            connection.sendall(request)
            return self._read_reply(connection)
        except (OSError, ReplyError) as error:
            self.close()
            if isinstance(error, ReplyError):
                raise
            raise ReplyError(f"{type(error).__name__}: {error}") from None

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket, self._buffer = None, b""

    def _connect(self) -> socket.socket:
        connection = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = connection
        return connection

    def _read_reply(self, connection: socket.socket) -> Reply:
        buffer = self._buffer
        while (head_end := buffer.find(HEADER_END)) < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise ReplyError("reply head too long")
            buffer += self._receive(connection)
        head = buffer[:head_end]
        status, length, closes = parse_head(head)
        body_start = head_end + len(HEADER_END)
        while len(buffer) - body_start < length:
            buffer += self._receive(connection)
        body_end = body_start + length
        body, self._buffer = buffer[body_start:body_end], buffer[body_end:]
        if closes:
            self.close()
        return Reply(status, body)

    @staticmethod
    def _receive(connection: socket.socket) -> bytes:
        chunk = connection.recv(READ_BYTES)
        if not chunk:
            raise ReplyError("connection closed by the server before the whole reply")
        return chunk


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, whether the server closes the connection after it)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ReplyError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    length: int | None = None
    closes = parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            if not value.strip().isdigit():
                raise ReplyError(f"bad Content-Length {value.strip()[:40]!r}")
            length = int(value)
        elif name == b"connection":
            token = value.strip().lower()
            closes = token == b"close" or (closes and token != b"keep-alive")
        elif name == b"transfer-encoding":
            raise ReplyError("replies without Content-Length (chunked) are not supported")
    if length is None:
        raise ReplyError("reply without Content-Length")
    return int(parts[1]), length, closes
