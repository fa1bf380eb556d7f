"""What preloading libfaketime costs (why the harness preloads it only into services a
clock_skew fault may pick).

Two figures, each measured plain and preloaded (offset 0, the harness's own environment from
`harness.faults.clock.faketime_environment`), alternating, in one run:

- the cost of one `time.time()` and one `time.monotonic()` call in a Python process;
- the latency of orders sent one at a time through the gateway of the reference topology,
  with the three engine nodes preloaded or not.

Part of `hftchaos bench` (2 rounds of 300 orders; 1 of 50 with --quick).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import percentiles_ms, python_json
from benchmarks.figures import Measurement, variants_and_ratio
from harness.backends.local import LocalBackend
from harness.faults.clock import faketime_environment, faketime_offset_text
from harness.orders import GatewayClient
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

CALLS = 200_000
WARMUP_ORDERS = 50
ROUNDS, ORDERS = 2, 300  # plain/preloaded pairs; measured orders per topology
CALL_COST_PROGRAM = f"""
import json, time
def cost(clock):
    started = time.perf_counter_ns()
    for _ in range({CALLS}):
        clock()
    return (time.perf_counter_ns() - started) / {CALLS}
print(json.dumps({{"time_ns": cost(time.time), "monotonic_ns": cost(time.monotonic)}}))
"""


def call_cost(preloaded: bool, library: Path, timestamp_file: Path) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    if preloaded:
        environment.update(faketime_environment(library, timestamp_file))
    costs: dict[str, float] = python_json(["-c", CALL_COST_PROGRAM], 120, environment)
    return costs


def order_latencies(preloaded: bool, orders: int, work: Path) -> tuple[list[int], int]:
    """Per-order round trips (ns) through the gateway, and how many were not acked."""
    loaded = load_topology(REFERENCE_TOPOLOGY)
    engines = loaded.topology.services_with_role("engine") if preloaded else []
    topology = loaded.topology.with_clock_control(engines)
    plan = make_plan(loaded.with_topology(topology), work, locate_toolchain())
    with LocalBackend(plan) as backend:
        backend.up()
        gateway = GatewayClient(plan.with_role("gateway")[0].address("http"))
        tag = "fk" if preloaded else "pl"
        latencies: list[int] = []
        failed = 0
        for index in range(WARMUP_ORDERS + orders):
            started = time.perf_counter_ns()
            reply = gateway.new_order(
                f"{tag}-{index}",
                f"acct-{index % 4}",
                "ACME",
                "buy" if index % 2 else "sell",
                "100.00",
                5,
            )
            elapsed = time.perf_counter_ns() - started
            if index < WARMUP_ORDERS:
                continue
            latencies.append(elapsed)
            failed += reply.outcome != "acked"
        gateway.close()
    return latencies, failed


def measure(quick: bool) -> Measurement:
    rounds, order_count = (1, 50) if quick else (ROUNDS, ORDERS)
    library = locate_toolchain().libfaketime
    calls: dict[str, list[dict[str, float]]] = {"plain": [], "preloaded": []}
    orders: dict[str, list[dict[str, Any]]] = {"plain": [], "preloaded": []}
    with tempfile.TemporaryDirectory(prefix="hftchaos-bench-") as scratch:
        timestamp_file = Path(scratch) / "faketime.rc"
        timestamp_file.write_text(faketime_offset_text(0))
        for round_number in range(rounds):
            for variant in ("plain", "preloaded"):
                preloaded = variant == "preloaded"
                calls[variant].append(call_cost(preloaded, library, timestamp_file))
                work = Path(scratch) / f"{variant}-{round_number}"
                latencies, failed = order_latencies(preloaded, order_count, work)
                orders[variant].append({**percentiles_ms(latencies), "not_acked": failed})

    def median(rows: list[dict[str, Any]], key: str) -> float:
        return round(float(statistics.median(row[key] for row in rows)), 3)

    conditions = {"rounds": rounds, "orders_per_topology": order_count}
    figures = []
    for name, rows, key, unit in (
        ("time_time_ns_per_call", calls, "time_ns", "ns"),
        ("time_monotonic_ns_per_call", calls, "monotonic_ns", "ns"),
        ("order_p50_ms", orders, "p50_ms", "ms"),
        ("order_p99_ms", orders, "p99_ms", "ms"),
    ):
        values = {variant: median(rows[variant], key) for variant in rows}
        figures += variants_and_ratio(name, values, unit, conditions, "preloaded", "plain")
    return Measurement(
        figures, conditions={"backend": "local"}, details={"calls": calls, "orders": orders}
    )
