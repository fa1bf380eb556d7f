"""CPU per status request on each side of the leader probe: the standard library's HTTP
handler and client against the lean ones the reference services and the harness use.

On the 2-core reference machine the whole topology runs near saturation at 200 orders/s, and
the probe's ~600 status requests a second were one of its larger costs. Server and client run
in this one process: the client's cost is its thread's CPU time, the server's is the rest of
the process's CPU time over the same requests. Variants alternate round by round, and the
figures are medians over rounds, so the ratios compare like with like on a noisy machine.

    python -m benchmarks.http_handler_cost   ->  results/bench/http_handler_cost.json
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks.common import write_result
from harness.status_client import KeepAliveRequest
from targets.reference.lean_http import LeanRequestHandler

ROUNDS = 7
REQUESTS_PER_ROUND = 2000
STATUS = {"role": "leader", "term": 3, "leader": "n1", "commit_index": 123456, "role_age_ms": 1.5}


def _status_handler(base: type[BaseHTTPRequestHandler]) -> type[BaseHTTPRequestHandler]:
    class StatusHandler(base):  # type: ignore[valid-type,misc]
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            body = json.dumps(STATUS, separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return StatusHandler


def _stdlib_client(url_port: int) -> Callable[[], object]:
    connection = http.client.HTTPConnection("127.0.0.1", url_port, timeout=2)

    def get() -> object:
        connection.request("GET", "/status")
        return json.loads(connection.getresponse().read())

    return get


def _lean_client(url_port: int) -> Callable[[], object]:
    client = KeepAliveRequest(f"http://127.0.0.1:{url_port}/status", timeout_s=2)
    return lambda: json.loads(client.get()[1])


def _round(
    handler: type[BaseHTTPRequestHandler], client_factory: Callable[[int], Callable[[], object]]
) -> tuple[float, float]:
    """(client us/request, server us/request) over one round."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        get = client_factory(int(server.server_address[1]))
        get()  # connect and warm up outside the measurement
        process_before, thread_before = time.process_time(), time.thread_time()
        for _ in range(REQUESTS_PER_ROUND):
            get()
        process_after, thread_after = time.process_time(), time.thread_time()
    finally:
        server.shutdown()
        server.server_close()
    client_s = thread_after - thread_before
    server_s = (process_after - process_before) - client_s
    return 1e6 * client_s / REQUESTS_PER_ROUND, 1e6 * server_s / REQUESTS_PER_ROUND


def main() -> None:
    variants = {
        # The server's cost, same (lean) client.
        "server_stdlib": (_status_handler(BaseHTTPRequestHandler), _lean_client),
        "server_lean": (_status_handler(LeanRequestHandler), _lean_client),
        # The client's cost, same (lean) server.
        "client_stdlib": (_status_handler(LeanRequestHandler), _stdlib_client),
        "client_lean": (_status_handler(LeanRequestHandler), _lean_client),
    }
    client_us: dict[str, list[float]] = {name: [] for name in variants}
    server_us: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, (handler, client) in variants.items():
            client_cost, server_cost = _round(handler, client)
            client_us[name].append(client_cost)
            server_us[name].append(server_cost)
    server_std = statistics.median(server_us["server_stdlib"])
    server_lean = statistics.median(server_us["server_lean"])
    client_std = statistics.median(client_us["client_stdlib"])
    client_lean = statistics.median(client_us["client_lean"])
    figures = {
        "rounds": ROUNDS,
        "requests_per_round": REQUESTS_PER_ROUND,
        "server_us_per_request": {"stdlib": round(server_std, 1), "lean": round(server_lean, 1)},
        "client_us_per_request": {"stdlib": round(client_std, 1), "lean": round(client_lean, 1)},
        "server_lean_over_stdlib": round(server_lean / server_std, 3),
        "client_lean_over_stdlib": round(client_lean / client_std, 3),
        # What the probe's default cadence (3 members every 5 ms) costs per second, both sides.
        "probe_cpu_ms_per_s_at_600_rps": {
            "stdlib": round(600 * (server_std + client_std) / 1000, 1),
            "lean": round(600 * (server_lean + client_lean) / 1000, 1),
        },
    }
    path = write_result("http_handler_cost", figures)
    print(json.dumps(figures, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
