"""The load's keep-alive POST against a real HTTP server on `::1`: it connects, sends a Host
header a server parses (`[::1]:port`), and reads the reply back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from harness.load.http_post import KeepAlivePost


class _SixServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hosts: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.hosts.append(self.headers["Host"])
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_SixServer]:
    with _SixServer(("::1", 0), _Echo) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        yield running
        running.shutdown()


def test_a_post_to_an_ipv6_gateway_carries_a_bracketed_host(server: _SixServer) -> None:
    port = server.server_address[1]
    post = KeepAlivePost("::1", port, timeout_s=5)
    try:
        replies = [post.post("/orders", b'{"n": %d}' % n) for n in range(2)]
    finally:
        post.close()
    assert [(r.status, r.body) for r in replies] == [(200, b'{"n": 0}'), (200, b'{"n": 1}')]
    assert _Echo.hosts == [f"[::1]:{port}"] * 2
