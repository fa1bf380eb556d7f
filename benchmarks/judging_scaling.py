"""How judging a run scales with its length: the metrics (`harness.analysis.analyse`) and every
safety check of the reference target (`harness.checks.run_checks` with
`targets.reference.checks.TARGET`) over a synthetic run of N orders, at a small and a
large N in one run. A nightly suite judges 15+ runs of a few thousand orders each, and a soak
run may have hundreds of thousands: judging must stay linear, and fit in memory.

The synthetic run is built the way a real one looks to the checks: every order is acked, the
commands are applied by the engine's own state machine (alternating sides at one price, so
every second order trades), three identical replicas journal them, and Kafka holds every
execution once.

Part of `hftchaos bench` (5,000 and 50,000 orders; 1,000 and 5,000 with --quick). Each size
is judged in a fresh process, so that its peak resident memory (which includes the synthetic
run itself) belongs to that size alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.common import python_json, ratio
from benchmarks.figures import Figure, Measurement
from harness.analysis import analyse
from harness.checks import run_checks
from harness.history import History
from harness.records import Outcome, PhaseMark, RequestRecord
from harness.scenario.model import Scenario
from harness.verdicts import Verdict
from targets.reference.checks import CHECKS, TARGET
from targets.reference.checks.model import FinalState, NodeFinal
from targets.reference.engine.commands import NewOrder, encode
from targets.reference.engine.journal import JournalEntry
from targets.reference.engine.orderbook import Side
from targets.reference.engine.state import EngineState

ORDER_SPACING_NS = 5_000_000  # 200 orders a second
SERVICE_NS = 3_000_000
SMALL, LARGE = 5_000, 50_000  # orders judged; 10x apart, so linear shows as 1.0


def synthetic_run(orders: int) -> tuple[History, FinalState, Scenario]:
    history = History()
    history.record(PhaseMark("load", 0))
    entries = []
    for index in range(orders):
        sent_ns = index * ORDER_SPACING_NS
        command = NewOrder(
            f"o-{index}",
            f"acct-{index % 4}",
            "ACME",
            Side.BUY if index % 2 else Side.SELL,
            10_000,
            5,
            sent_ns,
        )
        entries.append(JournalEntry(index + 1, 1, encode(command)))
        history.record(
            RequestRecord(
                "new",
                command.client_order_id,
                sent_ns,
                sent_ns,
                sent_ns + SERVICE_NS,
                Outcome.ACKED,
                200,
                fills=index % 2,
            )
        )
    history.record(PhaseMark("load-done", orders * ORDER_SPACING_NS))
    state = EngineState()
    for entry in entries:
        state.apply(entry.raft_index, entry.text)
    status = {
        "role": "follower",
        "term": 1,
        "last_applied": state.last_index,
        "state_hash": state.state_hash(),
        "state_hash_index": state.last_index,
        "last_exec_seq": state.last_exec_seq,
        "published_seq": state.last_exec_seq,
    }
    executions = state.execution_records(1, state.last_exec_seq)
    order_records = {str(o["client_order_id"]): o for o in state.order_records(1, orders + 1)}
    nodes = {
        name: NodeFinal(
            name,
            {**status, "node_id": name, "role": "leader" if name == "n1" else "follower"},
            executions,
            order_records,
            entries,
        )
        for name in ("n1", "n2", "n3")
    }
    final = FinalState(
        nodes=nodes,
        kafka=list(enumerate(executions)),
        consumer={"lag": 0, "gaps": [], "duplicates": 0, "applied": len(executions)},
        leaders_by_term={1: "n1"},
    )
    scenario = Scenario.model_validate(
        {"name": "bench", "load": {"rate_per_s": 200, "duration_s": orders / 200}}
    )
    return history, final, scenario


def judge(orders: int) -> dict[str, Any]:
    history, final, scenario = synthetic_run(orders)
    started = time.perf_counter()
    analyse(history, scenario)
    metrics_s = time.perf_counter() - started
    started = time.perf_counter()
    results = run_checks(TARGET, CHECKS, history, final)
    checks_s = time.perf_counter() - started
    not_valid = [r.name for r in results if r.verdict is not Verdict.VALID]
    if not_valid:  # a benchmark of checks that fail on a clean run would measure the wrong path
        raise SystemExit(f"synthetic run of {orders} orders judged not valid by {not_valid}")
    return {
        "orders": orders,
        "metrics_s": round(metrics_s, 3),
        "checks_s": round(checks_s, 3),
        "checks_us_per_order": round(checks_s / orders * 1e6, 2),
        "metrics_us_per_order": round(metrics_s / orders * 1e6, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def judge_in_fresh_process(orders: int) -> dict[str, Any]:
    figures: dict[str, Any] = python_json(
        ["-m", "benchmarks.judging_scaling", "--one", str(orders)], 1800
    )
    return figures


def measure(quick: bool) -> Measurement:
    small, large = (1_000, 5_000) if quick else (SMALL, LARGE)
    small_run, large_run = judge_in_fresh_process(small), judge_in_fresh_process(large)
    figures = [
        Figure(
            name=f"{part}_us_per_order",
            value=large_run[f"{part}_us_per_order"],
            unit="us",
            better="lower",
            conditions={"orders": large},
        )
        for part in ("checks", "metrics")
    ]
    # 1.0 is perfectly linear; a quadratic check would show large/small (here 10x) again.
    figures += [
        Figure(
            name=f"{part}_per_order_large_over_small",
            value=ratio(large_run[f"{part}_us_per_order"], small_run[f"{part}_us_per_order"]),
            unit="x",
            better="lower",
            conditions={"small": small, "large": large},
            goal="~1 (linear)",
        )
        for part in ("checks", "metrics")
    ]
    figures.append(
        Figure(
            name="peak_rss_mb",
            value=large_run["peak_rss_mb"],
            unit="MB",
            better="lower",
            conditions={"orders": large},
        )
    )
    return Measurement(figures, details={"small": small_run, "large": large_run})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.judging_scaling")
    parser.add_argument("--one", type=int, required=True, help="judge one size, print JSON")
    options = parser.parse_args(argv)
    print(json.dumps(judge(options.one)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
