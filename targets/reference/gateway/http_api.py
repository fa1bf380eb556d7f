"""The gateway's HTTP/1.1 keep-alive server: routes requests to GatewayService, nothing more."""

from __future__ import annotations

import signal
import threading
from http.server import ThreadingHTTPServer
from types import FrameType
from urllib.parse import unquote, urlsplit

from targets.reference.gateway.service import Answer, GatewayService, bad_request, not_found
from targets.reference.lean_http import LeanRequestHandler

MAX_BODY_BYTES = 64 * 1024


class GatewayHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive handler threads sit in a blocking read; waiting for them would stall exit.
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], service: GatewayService) -> None:
        super().__init__(address, GatewayRequestHandler)
        self.service = service

    @property
    def address_text(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"


class GatewayRequestHandler(LeanRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment on flush, and without waiting for Nagle.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: GatewayHttpServer

    def do_GET(self) -> None:
        parts = _path_parts(self.path)
        if parts == ["health"]:
            self._send(self.server.service.health())
        elif len(parts) == 2 and parts[0] == "orders":
            self._send(self.server.service.get_order(parts[1]))
        else:
            self._send(not_found(f"no GET route for {self.path}"))

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        parts = _path_parts(self.path)
        if parts == ["orders"]:
            self._send(self.server.service.submit_order(body))
        elif len(parts) == 3 and parts[0] == "orders" and parts[2] == "cancel":
            self._send(self.server.service.cancel_order(parts[1]))
        else:
            self._send(not_found(f"no POST route for {self.path}"))

    def log_message(self, format: str, *args: object) -> None:
        # One line per request at thousands per second would bury the LEADER lines.
        pass

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            # Chunked bodies are not read here, so where the next request starts is unknown.
            self.close_connection = True
            self._send(bad_request("send a Content-Length instead of Transfer-Encoding"))
            return None
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""  # HTTP/1.1: a request with neither header has an empty body
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(bad_request(f"Content-Length must be at most {MAX_BODY_BYTES}"))
            return None
        return self.rfile.read(int(length_text))

    def _send(self, answer: Answer) -> None:
        self.send_whole(answer.http_status, "application/json", answer.body)


def _path_parts(path: str) -> list[str]:
    return [unquote(part) for part in urlsplit(path).path.split("/") if part]


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
    while not stop.wait(0.5):
        if not serving.is_alive():
            break
    server.shutdown()
    server.server_close()
