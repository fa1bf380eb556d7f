"""CPU per status request on each side of the leader probe: the standard library's HTTP
handler and client against the lean ones the reference services and the harness use.

On the 2-core reference machine the whole topology runs near saturation at 200 orders/s, and
the probe's ~600 status requests a second were one of its larger costs. Server and client run
in this one process: the client's cost is its thread's CPU time, the server's is the rest of
the process's CPU time over the same requests. Variants alternate round by round, and the
figures are medians over rounds, so the ratios compare like with like on a noisy machine.

Part of `hftchaos bench`.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks.figures import Figure, Measurement, variants_and_ratio
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
    handler: type[BaseHTTPRequestHandler],
    client_factory: Callable[[int], Callable[[], object]],
    requests: int,
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
        for _ in range(requests):
            get()
        process_after, thread_after = time.process_time(), time.thread_time()
    finally:
        server.shutdown()
        server.server_close()
    client_s = thread_after - thread_before
    server_s = (process_after - process_before) - client_s
    return 1e6 * client_s / requests, 1e6 * server_s / requests


def measure(quick: bool) -> Measurement:
    rounds, requests = (2, 300) if quick else (ROUNDS, REQUESTS_PER_ROUND)
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
    for _ in range(rounds):
        for name, (handler, client) in variants.items():
            client_us_round, server_us_round = _round(handler, client, requests)
            client_us[name].append(client_us_round)
            server_us[name].append(server_us_round)
    server_cost = {v: statistics.median(server_us[f"server_{v}"]) for v in ("stdlib", "lean")}
    client_cost = {v: statistics.median(client_us[f"client_{v}"]) for v in ("stdlib", "lean")}
    conditions = {"rounds": rounds, "requests_per_round": requests}
    figures = [
        figure
        for side, costs in (("server", server_cost), ("client", client_cost))
        for figure in variants_and_ratio(
            f"{side}_us_per_request",
            {variant: round(cost, 1) for variant, cost in costs.items()},
            "us",
            conditions,
            "lean",
            "stdlib",
        )
    ]
    # What the probe's default cadence (3 members every 5 ms) costs per second, both sides.
    figures.append(
        Figure(
            name="probe_cpu_ms_per_s_at_600_rps",
            value=round(0.6 * (server_cost["lean"] + client_cost["lean"]), 1),
            unit="ms/s",
            better="lower",
            conditions=conditions,
        )
    )
    return Measurement(figures, details={"client_us": client_us, "server_us": server_us})
