"""A cheaper request handler for the reference services' small JSON APIs.

`BaseHTTPRequestHandler` parses every request's headers with the `email` package and formats a
fresh Date header per answer. The engines answer the harness's status probe hundreds of times a
second each, and on the 2-core reference machine those two steps were a measurable share of
the whole topology's CPU (see benchmarks/http_handler_cost.py). This handler parses the request
line and headers itself (HTTP/1.0 and 1.1; no folded headers, which RFC 9112 deprecates) and
formats the Date at most once a second. Everything else is the standard library's.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

MAX_LINE_BYTES = 8 * 1024
MAX_HEADERS = 100
_KNOWN_STATUSES = frozenset(int(status) for status in HTTPStatus)


class LeanHeaders:
    """Request headers by case-insensitive name (the last value wins on repeats)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def __setitem__(self, name: str, value: str) -> None:
        self._values[name.lower()] = value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)


class LeanRequestHandler(BaseHTTPRequestHandler):
    raw_requestline: bytes  # set by handle_one_request before parse_request
    _date_second = -1
    _date_text = ""

    def parse_request(self) -> bool:
        # The state the base class's error path (send_error) expects before anything is known;
        # unlike the standard library, errors then carry a status line (no HTTP/0.9 answers).
        self.command = None  # type: ignore[assignment]
        self.request_version = "HTTP/1.0"
        self.close_connection = True
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = line
        words = line.split()
        if len(words) != 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {line!r}")
            return False
        command, path, version = words
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Unsupported {version!r}")
            return False
        self.command, self.path, self.request_version = command, path, version
        headers = self._read_headers()
        if headers is None:
            return False
        self.headers = headers  # type: ignore[assignment]
        connection = (headers.get("Connection") or "").lower()
        if version == "HTTP/1.1" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = connection == "close"
        else:
            # An HTTP/1.0 exchange (either side) persists only when asked to, as in the stdlib.
            self.close_connection = connection != "keep-alive"
        if (headers.get("Expect") or "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _read_headers(self) -> LeanHeaders | None:
        headers = LeanHeaders()
        for _ in range(MAX_HEADERS):
            raw = self.rfile.readline(MAX_LINE_BYTES + 1)
            if len(raw) > MAX_LINE_BYTES:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Header line too long")
                return None
            if raw in (b"\r\n", b"\n", b""):
                return headers
            name, colon, value = str(raw, "iso-8859-1").partition(":")
            # A name with surrounding whitespace includes a folded continuation line.
            if not colon or not name or name != name.strip():
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad header line {raw!r}")
                return None
            headers[name] = value.strip()
        self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
        return None

    def send_whole(self, status: int, content_type: str, body: bytes) -> None:
        """Status line, headers and body in one write: `send_response`, `end_headers` and a
        body write are two syscalls and several Python calls per answer, on every order."""
        phrase = HTTPStatus(status).phrase if status in _KNOWN_STATUSES else ""
        head = (
            f"{self.protocol_version} {status} {phrase}\r\n"
            f"Server: {self.version_string()}\r\n"
            f"Date: {self.date_time_string()}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        # A race between handler threads only formats the same second twice.
        cls = type(self)
        if cls._date_second != second:
            cls._date_text = super().date_time_string(second)
            cls._date_second = second
        return cls._date_text
