"""The load path against the best open-loop generator: Vegeta and the harness's load worker
(`harness.load.driver`, the exact path a run uses) against one static nginx answer on
loopback, rate by rate, alternating, in one run.

At each rate both send POSTs for a few seconds. A rate is *sustained* when the generator sent
at least 98 % of it, at least 99.9 % of the scheduled requests were answered 200 (for the
worker, a slot never sent counts as failed) and its p99 latency stayed within 25 ms (the
worker's counted from the intended send time, Vegeta's from its actual send). Each generator
climbs the ladder until two rates in a row are not sustained. At 10,000/s (or the top of the
quick ladder) the figures the issue's goal names: the worker's p99 send lateness (start -
intended), its p99 latency from the intended send time, Vegeta's p99 latency, and the ratio.
CPU per request is the generator's processes' CPU time (children of this process) over the
requests it sent, start-up included (for the worker: three Python processes importing
Locust, about 2 CPU-seconds, which dominates at the quick run's sizes); the harness side
(reading records) is this process's own CPU time.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from benchmarks.common import percentiles_ms, profiling_wanted, ratio, start_py_spy
from benchmarks.figures import Figure, Measurement
from benchmarks.static_server import static_server
from benchmarks.vegeta import AttackResult, attack, ensure_vegeta, vegeta_version
from harness.load.driver import LoadDriver
from harness.load.wire import UNSENT_REASON
from harness.paths import results_root
from harness.records import Outcome, RequestRecord
from harness.scenario.model import LoadProfile

LADDER = (1_000, 2_000, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000)
QUICK_LADDER = (200, 500)
DURATION_S, QUICK_DURATION_S = 5.0, 2.0
FOCUS_RATE = 10_000  # where the lateness and latency goals are set
SUSTAINED_SEND_SHARE = 0.98
SUSTAINED_SUCCESS = 0.999
# The library's steady-state bound (issue 13, goal 3): a generator that adds more than this
# by itself cannot check it. For the worker the p99 counts from the intended send time.
SUSTAINED_P99_MS = 25.0
MISSES_TO_STOP = 2
USERS = 128  # concurrent senders of the worker; enough to cover 10 ms of nginx at 10,000/s
BODY = json.dumps(
    {
        "client_order_id": "bench-1",
        "account": "acct-1",
        "symbol": "ACME",
        "side": "buy",
        "price": "100.00",
        "quantity": 1,
    }
)


@dataclass(frozen=True, slots=True)
class Point:
    """One generator at one rate."""

    generator: str  # "vegeta" | "worker"
    rate_per_s: int
    sent_per_s: float
    success_ratio: float
    p99_latency_ms: float | None  # worker: from the intended send time; Vegeta: from its send
    p50_latency_ms: float | None
    p99_lateness_ms: float | None  # worker only: actual send - intended send
    cpu_us_per_request: float | None  # the generator's processes
    harness_cpu_us_per_request: float | None  # this process (worker only: reading records)
    sent: int

    @property
    def sustained(self) -> bool:
        return is_sustained(
            self.rate_per_s, self.sent_per_s, self.success_ratio, self.p99_latency_ms
        )


def is_sustained(
    rate_per_s: float, sent_per_s: float, success_ratio: float, p99_latency_ms: float | None
) -> bool:
    return (
        sent_per_s >= SUSTAINED_SEND_SHARE * rate_per_s
        and success_ratio >= SUSTAINED_SUCCESS
        and p99_latency_ms is not None
        and p99_latency_ms <= SUSTAINED_P99_MS
    )


class CpuMeter:
    """CPU seconds of this process and of its waited-for children, between two readings."""

    def __init__(self) -> None:
        self._self = resource.getrusage(resource.RUSAGE_SELF)
        self._children = resource.getrusage(resource.RUSAGE_CHILDREN)

    def read(self) -> tuple[float, float]:
        own, children = (
            resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )

        def seconds(after: Any, before: Any) -> float:
            return float(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

        return seconds(own, self._self), seconds(children, self._children)


def per_request_us(seconds: float, requests: int) -> float | None:
    return round(seconds * 1e6 / requests, 1) if requests else None


def vegeta_point(binary: Path, address: str, rate: int, duration_s: float) -> Point:
    meter = CpuMeter()
    result: AttackResult = attack(binary, f"http://{address}/orders", BODY, rate, duration_s)
    _, children_s = meter.read()
    return Point(
        generator="vegeta",
        rate_per_s=rate,
        sent_per_s=result.rate_per_s,
        success_ratio=result.success_ratio,
        p99_latency_ms=result.p99_ms,
        p50_latency_ms=result.p50_ms,
        p99_lateness_ms=None,
        cpu_us_per_request=per_request_us(children_s, result.requests),
        harness_cpu_us_per_request=None,
        sent=result.requests,
    )


def worker_point(
    address: str, rate: int, duration_s: float, scratch: Path, flame: Path | None = None
) -> Point:
    records: list[RequestRecord] = []
    profile = LoadProfile(
        rate_per_s=rate, duration_s=duration_s, users=USERS, cancel_ratio=0.0, warmup_s=0
    )
    log_file = scratch / f"worker-{rate}" / "load.log"
    driver = LoadDriver(address, profile, "bench", 0, records.extend, log_file, run_dir=scratch)
    meter = CpuMeter()
    try:
        driver.start()
        spy = None
        if flame is not None and driver.wait_started(timeout_s=60) is not None:
            spy = start_py_spy(driver.pids[1], flame, duration_s - 1)  # the first worker
        summary = driver.wait(timeout_s=duration_s + 60)
        if spy is not None:
            spy.wait(timeout=60)
    finally:
        driver.stop()
    own_s, children_s = meter.read()
    return summarise_worker(
        rate, records, summary.start_ns, summary.slots_scheduled, own_s, children_s
    )


def summarise_worker(
    rate: int,
    records: list[RequestRecord],
    start_ns: int | None,
    scheduled: int,
    own_s: float,
    children_s: float,
) -> Point:
    sent = [record for record in records if record.reason != UNSENT_REASON]
    acked = sum(record.outcome is Outcome.ACKED for record in sent)
    span_ns = max((r.start_ns for r in sent), default=0) - (start_ns or 0)
    latency = percentiles_ms([r.end_ns - r.intended_ns for r in sent]) if len(sent) > 1 else {}
    lateness = percentiles_ms([r.start_ns - r.intended_ns for r in sent]) if len(sent) > 1 else {}
    return Point(
        generator="worker",
        rate_per_s=rate,
        # n sends span n - 1 intervals of the schedule
        sent_per_s=round(len(sent) * 1e9 / (span_ns + 1e9 / rate), 1) if sent and start_ns else 0.0,
        success_ratio=round(acked / scheduled, 5) if scheduled else 0.0,
        p99_latency_ms=latency.get("p99_ms"),
        p50_latency_ms=latency.get("p50_ms"),
        p99_lateness_ms=lateness.get("p99_ms"),
        cpu_us_per_request=per_request_us(children_s, len(sent)),
        harness_cpu_us_per_request=per_request_us(own_s, len(sent)),
        sent=len(sent),
    )


def climb(ladder: tuple[int, ...], measure_one: Callable[[str, int], Point]) -> Iterator[Point]:
    """Both generators rate by rate, alternating; each stops after MISSES_TO_STOP misses."""
    misses = {"vegeta": 0, "worker": 0}
    for rate in ladder:
        for generator in misses:
            if misses[generator] >= MISSES_TO_STOP:
                continue
            point = measure_one(generator, rate)
            misses[generator] = 0 if point.sustained else misses[generator] + 1
            yield point


def max_sustained(points: list[Point], generator: str) -> int | None:
    rates = [p.rate_per_s for p in points if p.generator == generator and p.sustained]
    return max(rates, default=None)


def at_rate(points: list[Point], generator: str, rate: int) -> Point | None:
    return next((p for p in points if p.generator == generator and p.rate_per_s == rate), None)


def measure(quick: bool) -> Measurement:
    ladder, duration_s = (QUICK_LADDER, QUICK_DURATION_S) if quick else (LADDER, DURATION_S)
    binary = ensure_vegeta()
    with static_server() as server, TemporaryDirectory(prefix="hftchaos-load-") as scratch:

        def measure_one(generator: str, rate: int) -> Point:
            if generator == "vegeta":
                return vegeta_point(binary, server.address, rate, duration_s)
            return worker_point(server.address, rate, duration_s, Path(scratch))

        points = list(climb(ladder, measure_one))
        nginx = server.version
        flame = results_root() / "bench" / f"load-worker-{FOCUS_RATE}.svg"
        if profiling_wanted() and not quick:
            worker_point(server.address, FOCUS_RATE, duration_s, Path(scratch), flame)
    conditions = {
        "server": f"nginx {nginx}, 1 worker process, static answer, loopback",
        "vegeta": vegeta_version(binary),
        "duration_s_per_rate": duration_s,
        "worker_users": USERS,
        "cores": os.cpu_count(),
    }
    return Measurement(
        figures(points, ladder[-1] if quick else FOCUS_RATE, duration_s),
        conditions=conditions,
        details={"points": [{**asdict(p), "sustained": p.sustained} for p in points]},
    )


def figures(points: list[Point], focus: int, duration_s: float) -> list[Figure]:
    vegeta_max, worker_max = max_sustained(points, "vegeta"), max_sustained(points, "worker")
    vegeta, worker = at_rate(points, "vegeta", focus), at_rate(points, "worker", focus)
    at_focus = {"rate_per_s": focus, "duration_s": duration_s}
    vegeta_p99 = vegeta.p99_latency_ms if vegeta else None
    worker_p99 = worker.p99_latency_ms if worker else None
    result = [
        Figure(name="vegeta_max_sustained_per_s", value=vegeta_max, unit="1/s", better="higher"),
        Figure(
            name="worker_max_sustained_per_s",
            value=worker_max,
            unit="1/s",
            better="higher",
            goal=">= Vegeta's (>= 20,000)",
        ),
        Figure(
            name="worker_over_vegeta_max_rate",
            value=ratio(worker_max or 0, vegeta_max or 0),
            unit="x",
            better="higher",
            goal=">= 1",
        ),
        Figure(
            name="worker_p99_lateness_ms",
            value=worker.p99_lateness_ms if worker else None,
            unit="ms",
            better="lower",
            conditions=at_focus,
            goal="<= 1 ms",
        ),
        Figure(
            name="worker_p99_latency_ms",
            value=worker_p99,
            unit="ms",
            better="lower",
            conditions=at_focus,
        ),
        Figure(
            name="vegeta_p99_latency_ms",
            value=vegeta_p99,
            unit="ms",
            better="lower",
            conditions=at_focus,
        ),
        Figure(
            name="worker_over_vegeta_p99_latency",
            value=ratio(worker_p99, vegeta_p99) if worker_p99 and vegeta_p99 else None,
            unit="x",
            better="lower",
            conditions=at_focus,
            goal="<= 2",
        ),
    ]
    for point in (worker, vegeta):
        if point is not None:
            result.append(
                Figure(
                    name=f"{point.generator}_cpu_us_per_request",
                    value=point.cpu_us_per_request,
                    unit="us",
                    better="lower",
                    conditions=at_focus,
                )
            )
    return result
