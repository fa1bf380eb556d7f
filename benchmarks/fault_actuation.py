"""Fault actuation on the local backend: from the instant a fault is due to the instant its
effect is seen, per fault type, over rounds on one reference topology.

Each effect is read from the kernel or the node, not from what the backend's call returned:
- kill: the node's process is gone or a zombie (psutil);
- pause: the node's process is stopped (psutil: SIGSTOP taken);
- packet_loss, partition: the tagged rule is in a fresh listing of the filter table
  (`rule_counters`, an `iptables-save` of its own);
- clock_skew: the node's own /status reports a wall clock at least 90 % of the offset away.

A figure ends when the check that first sees the effect returns, so it includes that check;
each kind's `observe_ms` is the median time one such check takes (an `iptables-save` is
milliseconds), to tell the observer's cost from the fault's.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import percentiles_ms
from benchmarks.figures import Figure, Measurement
from harness.backends.local.backend import LocalBackend
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

POLL_S = 0.0002
EFFECT_TIMEOUT_S = 10.0
SKEW_MS = 5000.0
ENGINES = ("n1", "n2", "n3")
ROUNDS, QUICK_ROUNDS = 10, 2
KINDS = ("kill", "pause", "packet_loss", "partition", "clock_skew")


def timed(apply: Callable[[], Any], effect: Callable[[], bool]) -> tuple[int, int, Any]:
    """(due -> effect seen, the successful check's own duration, what apply returned)."""
    due = time.monotonic_ns()
    applied = apply()
    deadline = time.monotonic() + EFFECT_TIMEOUT_S
    while True:
        checking = time.monotonic_ns()
        if effect():
            seen = time.monotonic_ns()
            return seen - due, seen - checking, applied
        if time.monotonic() > deadline:
            raise RuntimeError("the fault had no visible effect within the timeout")
        time.sleep(POLL_S)


def process_status(pid: int) -> str:
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return "gone"


def pid_of(backend: LocalBackend, name: str) -> int:
    pid = backend.facts(name).pid
    if pid is None:
        raise RuntimeError(f"{name} has no process to act on")
    return pid


def wall_offset_ms(backend: LocalBackend, name: str) -> float:
    url = backend.plan.services[name].raft_status_url
    assert url is not None
    with urllib.request.urlopen(url, timeout=1) as response:
        document: dict[str, Any] = json.load(response)
    return float(document["wall_ns"] - time.time_ns()) / 1e6


def measure_round(
    backend: LocalBackend, index: int, samples: dict[str, list[tuple[int, int]]]
) -> None:
    name = ENGINES[index % 3]
    others = [other for other in ENGINES if other != name]
    killed = pid_of(backend, name)
    took, check, _ = timed(
        lambda: backend.kill(name),
        lambda: process_status(killed) in ("gone", psutil.STATUS_ZOMBIE),
    )
    samples["kill"].append((took, check))
    backend.start(name)
    backend.wait_healthy(name)
    paused = pid_of(backend, name)
    took, check, _ = timed(
        lambda: backend.pause(name), lambda: process_status(paused) == psutil.STATUS_STOPPED
    )
    samples["pause"].append((took, check))
    backend.resume(name)
    run = f"bench{index}"
    took, check, fault = timed(
        lambda: backend.drop_packets(run, 1, name, 30),
        lambda: bool(backend.rule_counters(f"hftchaos:{run}:1")),
    )
    samples["packet_loss"].append((took, check))
    fault.heal()
    took, check, fault = timed(
        lambda: backend.partition(run, 2, [[name], others]),
        lambda: bool(backend.rule_counters(f"hftchaos:{run}:2")),
    )
    samples["partition"].append((took, check))
    fault.heal()
    took, check, _ = timed(
        lambda: backend.set_clock_offset(name, SKEW_MS),
        lambda: wall_offset_ms(backend, name) > SKEW_MS * 0.9,
    )
    samples["clock_skew"].append((took, check))
    backend.set_clock_offset(name, 0)


def measure(quick: bool) -> Measurement:
    rounds = QUICK_ROUNDS if quick else ROUNDS
    loaded = load_topology(REFERENCE_TOPOLOGY)
    topology = loaded.topology.with_clock_control(ENGINES)
    samples: dict[str, list[tuple[int, int]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="hftchaos-bench-actuation-") as work:
        plan = make_plan(loaded.with_topology(topology), Path(work) / "run", locate_toolchain())
        backend = LocalBackend(plan)
        try:
            backend.up()
            for index in range(rounds):
                measure_round(backend, index, samples)
        finally:
            backend.teardown()
    conditions = {"backend": "local", "topology": "reference", "rounds": rounds}
    figures = []
    details: dict[str, Any] = {}
    for kind, pairs in samples.items():
        took = percentiles_ms([due_to_seen for due_to_seen, _ in pairs])
        observe_ms = round(statistics.median(check for _, check in pairs) / 1e6, 3)
        details[kind] = {**took, "observe_ms": observe_ms}
        for label in ("p50_ms", "p99_ms"):
            figures.append(
                Figure(
                    name=f"{kind}_{label}",
                    value=took[label],
                    unit="ms",
                    better="lower",
                    conditions={**conditions, "observe_ms": observe_ms},
                    goal="<= 5" if label == "p99_ms" else "",
                )
            )
    return Measurement(figures, conditions=conditions, details=details)
