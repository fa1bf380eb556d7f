"""A tiny peer for fault-effect tests: it accepts lines on --listen (answering each with
`ok`), answers HTTP GET on --http (with a Date header from its own wall clock), and sends a
line to every --peer every --interval-ms over a kept-open connection, reconnecting when it
breaks.

With --source HOST its outgoing connections come from its own address (bound before
connecting), as a well-behaved cluster member's do; without it they come from whatever the
kernel picks (127.0.0.1 on loopback), which kernel rules on its own address never see.
Bounded: it stops by itself after --lifetime-s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import socket
import socketserver
import threading
import time

CONNECT_TIMEOUT_S = 0.2


class _Lines(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while self.rfile.readline():
                self.wfile.write(b"ok\n")  # an answer, so both directions carry bytes


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)  # adds Date from this process's own wall clock
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _serve(server: socketserver.BaseServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _talk(peer: tuple[str, int], source: str | None, interval_s: float, until: float) -> None:
    connection: socket.socket | None = None
    while time.monotonic() < until:
        try:
            if connection is None:
                connection = socket.socket()
                connection.settimeout(CONNECT_TIMEOUT_S)
                if source is not None:
                    connection.bind((source, 0))
                connection.connect(peer)
            connection.sendall(b"hello\n")
            connection.recv(64)
        except OSError:
            if connection is not None:
                connection.close()
            connection = None
        time.sleep(interval_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--peer", action="append", default=[])
    parser.add_argument("--source")
    parser.add_argument("--interval-ms", type=float, default=20)
    parser.add_argument("--lifetime-s", type=float, default=600)
    args = parser.parse_args()
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    _serve(socketserver.ThreadingTCPServer(_address(args.listen), _Lines))
    _serve(http.server.ThreadingHTTPServer(_address(args.http), _Status))
    until = time.monotonic() + args.lifetime_s
    for peer in args.peer:
        threading.Thread(
            target=_talk,
            args=(_address(peer), args.source, args.interval_ms / 1000, until),
            daemon=True,
        ).start()
    time.sleep(max(0.0, until - time.monotonic()))


if __name__ == "__main__":
    main()
