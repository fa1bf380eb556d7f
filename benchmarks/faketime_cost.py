"""What preloading libfaketime costs (why the harness preloads it only into services a
clock_skew fault may pick).

Two figures, each measured plain and preloaded (offset 0, the harness's own environment from
`harness.faults.clock.faketime_environment`), alternating, in one run:

- the cost of one `time.time()` and one `time.monotonic()` call in a Python process;
- the latency of orders sent one at a time through the gateway of the reference topology,
  with the three engine nodes preloaded or not.

    python -m benchmarks.faketime_cost [--rounds 2] [--orders 300]
writes results/bench/faketime_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import percentiles_ms, python_json, ratio, write_result
from harness.backends.local import LocalBackend
from harness.faults.clock import faketime_environment, faketime_offset_text
from harness.orders import GatewayClient
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

CALLS = 200_000
WARMUP_ORDERS = 50
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faketime_cost")
    parser.add_argument("--rounds", type=int, default=2, help="plain/preloaded pairs")
    parser.add_argument("--orders", type=int, default=300, help="measured orders per topology")
    options = parser.parse_args(argv)
    library = locate_toolchain().libfaketime

    calls: dict[str, list[dict[str, float]]] = {"plain": [], "preloaded": []}
    orders: dict[str, list[dict[str, Any]]] = {"plain": [], "preloaded": []}
    with tempfile.TemporaryDirectory(prefix="hftchaos-bench-") as scratch:
        timestamp_file = Path(scratch) / "faketime.rc"
        timestamp_file.write_text(faketime_offset_text(0))
        for round_number in range(options.rounds):
            for variant in ("plain", "preloaded"):
                preloaded = variant == "preloaded"
                calls[variant].append(call_cost(preloaded, library, timestamp_file))
                work = Path(scratch) / f"{variant}-{round_number}"
                latencies, failed = order_latencies(preloaded, options.orders, work)
                orders[variant].append({**percentiles_ms(latencies), "not_acked": failed})
                print(f"round {round_number + 1} {variant}: {orders[variant][-1]}", flush=True)

    def median(rows: list[dict[str, Any]], key: str) -> float:
        return round(float(statistics.median(row[key] for row in rows)), 3)

    summary = {
        "time_time_ns_per_call": {v: median(calls[v], "time_ns") for v in calls},
        "time_monotonic_ns_per_call": {v: median(calls[v], "monotonic_ns") for v in calls},
        "order_p50_ms": {v: median(orders[v], "p50_ms") for v in orders},
        "order_p99_ms": {v: median(orders[v], "p99_ms") for v in orders},
    }
    ratios = {name: ratio(values["preloaded"], values["plain"]) for name, values in summary.items()}
    path = write_result(
        "faketime_cost",
        {
            "method": __doc__.split("\n\n")[1],
            "rounds": options.rounds,
            "orders_per_topology": options.orders,
            "medians": summary,
            "preloaded_over_plain": ratios,
            "calls": calls,
            "orders": orders,
        },
    )
    print(json.dumps({"medians": summary, "preloaded_over_plain": ratios}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
