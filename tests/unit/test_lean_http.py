"""The reference services' request handler, spoken to over real loopback sockets."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from http.server import ThreadingHTTPServer
from typing import ClassVar

import pytest

from targets.reference.lean_http import MAX_HEADERS, MAX_LINE_BYTES, LeanRequestHandler


class EchoHandler(LeanRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer({"path": self.path, "x": self.headers.get("X-Thing")})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or "0")
        self._answer({"body": self.rfile.read(length).decode()})

    def _answer(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(request)
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_keep_alive_get_and_post_with_case_insensitive_headers() -> None:
    with server() as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/a?b=1", headers={"x-THING": "yes"})
        first = connection.getresponse()
        assert json.loads(first.read()) == {"path": "/a?b=1", "x": "yes"}
        assert parsedate_to_datetime(first.headers["Date"]) is not None
        connection.request("POST", "/orders", body=b'{"qty":3}')
        assert json.loads(connection.getresponse().read()) == {"body": '{"qty":3}'}
        # Still the first connection: the server kept it open.
        assert connection.sock is not None
        connection.close()


@pytest.mark.parametrize(
    ("request_head", "closes"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", False),
    ],
)
def test_connection_persistence_follows_the_version_and_header(
    request_head: bytes, closes: bool
) -> None:
    with server() as port, socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
        conn.sendall(request_head)
        received = b""
        try:
            while data := conn.recv(65536):
                received += data
            closed = True
        except TimeoutError:
            closed = False
    assert received.startswith(b"HTTP/1.")
    assert b"200" in received.split(b"\r\n")[0]
    assert closed is closes


class OldHandler(EchoHandler):
    protocol_version = "HTTP/1.0"


def test_a_handler_that_speaks_http_1_0_closes_after_each_answer() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), OldHandler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        answer = raw_exchange(httpd.server_address[1], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert answer.startswith(b"HTTP/1.0 200")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\n\r\n", b"505"),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\n folded: value\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_LINE_BYTES + b"\r\n\r\n", b"431"),
        (b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * MAX_HEADERS + b"\r\n", b"431"),
    ],
)
def test_malformed_requests_get_an_error_and_a_closed_connection(
    request_bytes: bytes, status: bytes
) -> None:
    with server() as port:
        answer = raw_exchange(port, request_bytes)
    assert answer.split(b"\r\n")[0].split(b" ")[1] == status


class WholeAnswerHandler(LeanRequestHandler):
    """Answers with send_whole and counts its writes."""

    protocol_version = "HTTP/1.1"
    writes: ClassVar[list[bytes]] = []

    def setup(self) -> None:
        super().setup()
        real_write = self.wfile.write

        def counted(data: bytes) -> int:
            WholeAnswerHandler.writes.append(bytes(data))
            return int(real_write(data))

        self.wfile.write = counted  # type: ignore[method-assign]

    def do_GET(self) -> None:
        if self.path == "/close":
            self.close_connection = True
        status = 404 if self.path == "/missing" else 200
        self.send_whole(status, "application/json", json.dumps({"path": self.path}).encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_send_whole_answers_in_one_write_that_http_client_reads() -> None:
    WholeAnswerHandler.writes = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), WholeAnswerHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=2)
        answers = []
        for path in ("/a", "/missing", "/close"):
            connection.request("GET", path)
            response = connection.getresponse()
            answers.append((response.status, response.reason, json.loads(response.read())))
            assert response.getheader("Content-Type") == "application/json"
            assert parsedate_to_datetime(response.getheader("Date") or "") is not None
        assert answers == [
            (200, "OK", {"path": "/a"}),
            (404, "Not Found", {"path": "/missing"}),
            (200, "OK", {"path": "/close"}),
        ]
        assert response.getheader("Connection") == "close"
        assert len(WholeAnswerHandler.writes) == 3  # one per answer, kept alive until /close
        assert all(b"\r\n\r\n{" in write for write in WholeAnswerHandler.writes)
        connection.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
