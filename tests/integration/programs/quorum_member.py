"""A stand-in for a quorum system's member, for the start-group tests: it listens on --peer
(accepting and closing connections) and answers GET /health on --http with 200 only once a
majority of the members (itself and every --peers address) accept a TCP connection, 503
before, as NATS's /healthz does until JetStream has a quorum. Bounded: it stops by itself
after --lifetime-s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import socket
import threading
import time

CONNECT_TIMEOUT_S = 0.2


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _reachable(address: tuple[str, int]) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(address, CONNECT_TIMEOUT_S):
        return True
    return False


def _accept_forever(listener: socket.socket) -> None:
    while True:
        connection, _ = listener.accept()
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer", required=True, help="host:port this member listens on")
    parser.add_argument("--http", required=True, help="host:port of its health endpoint")
    parser.add_argument("--peers", default="", help="the other members' --peer addresses")
    parser.add_argument("--lifetime-s", type=float, default=300)
    arguments = parser.parse_args()
    others = [_address(p) for p in arguments.peers.split(",") if p]
    majority = (len(others) + 1) // 2 + 1

    listener = socket.create_server(_address(arguments.peer))
    threading.Thread(target=_accept_forever, args=(listener,), daemon=True).start()

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            up = 1 + sum(_reachable(peer) for peer in others)
            self.send_response(200 if up >= majority else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(_address(arguments.http), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    time.sleep(arguments.lifetime_s)


if __name__ == "__main__":
    main()
