"""The consumer's HTTP server: GET /status, serving until SIGTERM or SIGINT."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from types import FrameType
from urllib.parse import urlsplit

from targets.reference.lean_http import LeanRequestHandler

StatusSource = Callable[[], dict[str, object]]


class ConsumerHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive handler threads sit in a blocking read; waiting for them would stall exit.
    block_on_close = False

    def __init__(self, address: tuple[str, int], status: StatusSource) -> None:
        super().__init__(address, ConsumerRequestHandler)
        self.status = status

    @property
    def address_text(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"


class ConsumerRequestHandler(LeanRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body leave in one segment on flush
    server: ConsumerHttpServer

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/status":
            self._send(HTTPStatus.OK, self.server.status())
        else:
            self._send(HTTPStatus.NOT_FOUND, {"status": "error", "reason": "not_found"})

    def log_message(self, format: str, *args: object) -> None:
        # The harness polls /status often; a line per poll would bury the useful ones.
        pass

    def _send(self, status: HTTPStatus, payload: dict[str, object]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def serve_until_terminated(server: ThreadingHTTPServer) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting and close the listening socket."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # serve_forever runs in a thread because shutdown() must be called from another one.
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
    )
    serving.start()
    while not stop.wait(0.5) and serving.is_alive():
        pass
    server.shutdown()
    server.server_close()
