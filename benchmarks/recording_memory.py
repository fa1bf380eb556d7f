"""What recording and judging a long run costs the harness: its peak resident memory over a
run of six million requests (10 minutes at 10,000 requests/s), the bytes a request takes in
memory and in requests.parquet, and the CPU the reader spends per request.

The requests arrive the way a run's do: a process on the other end of a pipe writes the load
master's line protocol (`harness.load.wire`: batches of rows every 50 ms per worker, two
workers whose batches interleave, so the history is out of intended order like a real one)
and the harness's own `LoadDriver` reads, parses and publishes them on the run's event bus to
the `History`. The Raft probe's samples of such a run are recorded too (a leader every 5 ms,
two followers every 25 ms). Then the run is judged (`analyse`, the steady-state windows), its
history written (`write_history`) and read back as the report reads it.

What is not the run's: the feeder writes as fast as the pipe takes it, so six million requests
arrive in well under 10 minutes; memory depends on what is kept, not on how fast it came. The
target's own safety checks (the engine state they read back) are not included: they grow
with the target's state, not the harness's (`judging_scaling` has their peak).

The same requests kept as one `RequestRecord` object each, as the history did before its
columns, are measured in the same run (a smaller count, scaled per request) for the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.common import python_json, ratio
from benchmarks.figures import Better, Figure, Measurement
from harness.history import History
from harness.store.summarise import RunFacts
from harness.verdicts import Verdict

RATE_PER_S = 10_000
WORKERS = 2
BATCH_NS = 50_000_000  # a worker sends its rows every 50 ms
FULL, QUICK = 6_000_000, 200_000  # requests: 10 min at 10,000/s; CI smoke
OBJECTS_FULL, OBJECTS_QUICK = 1_000_000, 100_000
START_NS = 10**15
ERROR_EVERY = 97  # a few failed requests, with reasons, as a fault leaves
PROBES_PER_S = 200 + 2 * 40  # leader every 5 ms, two followers every 25 ms


def rows(count: int) -> Iterator[list[Any]]:
    """The rows of `count` requests in the order two workers would send their batches: each
    from one of 256 users, sent 20-400 us late, answered in 0.3-20 ms (seeded: every run of
    the bench records the same requests)."""
    from harness.load.orderflow import client_order_id

    spacing = 1_000_000_000 // RATE_PER_S
    per_batch = BATCH_NS // spacing
    rnd = random.Random(20261204)
    sequences = [0] * 256
    for batch_start in range(0, count, per_batch):
        for worker in range(WORKERS):  # worker 1's batch arrives after worker 0's
            for slot in range(batch_start + worker, min(batch_start + per_batch, count), WORKERS):
                intended = START_NS + slot * spacing
                user = rnd.randrange(256)
                sequences[user] += 1
                start = intended + rnd.randint(20_000, 400_000)
                end = start + int(rnd.lognormvariate(0.0, 0.8) * 1_500_000) + 300_000
                failed = slot % ERROR_EVERY == 0
                yield [
                    "new" if rnd.random() < 0.7 else "cancel",
                    client_order_id("bench7", user, sequences[user]),
                    intended,
                    start,
                    end,
                    "unknown" if failed else "acked",
                    None if failed else 200,
                    f"timeout after {rnd.randint(1000, 1004)} ms" if failed else "",
                    user,
                    rnd.randint(0, 1),
                ]


def feed(count: int) -> None:
    """The load master's side: a started notice, record lines, a summary."""
    from harness.load import wire

    out = sys.stdout
    out.write(wire.notice_line(wire.STARTED_KIND, {"start_ns": START_NS}))
    batch: list[list[Any]] = []
    per_line = BATCH_NS * RATE_PER_S // 1_000_000_000 // WORKERS
    for row in rows(count):
        batch.append(row)
        if len(batch) == per_line:
            out.write(wire.records_line(batch))
            batch = []
    if batch:
        out.write(wire.records_line(batch))
    out.write(wire.notice_line(wire.SUMMARY_KIND, {"requests": count}))
    out.flush()


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB


def record_and_judge(count: int) -> dict[str, Any]:
    """In a fresh process: the harness's side of a run of `count` requests."""
    import pandas  # noqa: F401  # the harness has these loaded by the time a run records

    from harness.analysis import analyse, check_steady_state
    from harness.history import EventBus
    from harness.load import driver as driver_module
    from harness.load.driver import LoadDriver, Topology
    from harness.memory import prefer_system_allocator, release_freed_memory
    from harness.records import PhaseMark, ProbeSample
    from harness.request_log import as_log
    from harness.results import write_history
    from harness.runner import RunResult
    from harness.scenario.model import LoadProfile, Scenario
    from harness.store.summarise import summarise
    from harness.store.summary import write_summary

    prefer_system_allocator()  # as the command line does
    duration_s = count / RATE_PER_S
    scenario = Scenario.model_validate(
        {"name": "bench", "load": {"rate_per_s": RATE_PER_S, "duration_s": duration_s}}
    )
    history, bus = History(), EventBus()
    bus.subscribe(history.record)
    base_mb = rss_mb()
    feeder = [sys.executable, "-m", "benchmarks.recording_memory", "--feed", str(count)]
    with tempfile.TemporaryDirectory(prefix="hftchaos-bench-") as scratch:
        run_dir = Path(scratch)
        load = LoadDriver(
            "http://127.0.0.1:9",
            LoadProfile(rate_per_s=RATE_PER_S, duration_s=duration_s),
            "bench7",
            1,
            bus.publish,
            run_dir / "logs" / "load.log",
            topology=Topology(local_workers=0, remote_workers=0, bind="127.0.0.1:9"),
        )
        cpu_before, started = time.process_time(), time.perf_counter()
        with mock.patch.object(driver_module, "master_command", lambda *_, **__: feeder):
            load.start()
            summary = load.wait(timeout_s=1800)
        read_cpu_s, read_s = time.process_time() - cpu_before, time.perf_counter() - started
        if summary.received != count:
            raise SystemExit(f"the driver delivered {summary.received} of {count} requests")
        history.record(PhaseMark("load", START_NS))
        history.record(PhaseMark("load-done", START_NS + count * 1_000_000_000 // RATE_PER_S))
        probes = int(duration_s * PROBES_PER_S)
        for index in range(probes):
            node = ("n1", "n2", "n3")[index % 3]
            at = START_NS + index * 1_000_000_000 // PROBES_PER_S
            history.record(
                ProbeSample(node, at + 300_000, True, "leader" if node == "n1" else "follower",
                            1, "n1", index, index, at, 12.5)
            )  # fmt: skip
        recorded_mb = rss_mb()
        peaks = {"recorded": peak_rss_mb()}
        resident = {"recorded": recorded_mb}
        started = time.perf_counter()
        metrics = analyse(history, scenario)
        steady = check_steady_state(
            "all", history, scenario.steady_state, START_NS, 2**62, RATE_PER_S
        )
        judge_s = time.perf_counter() - started
        peaks["judged"] = peak_rss_mb()
        resident["judged"] = rss_mb()
        started = time.perf_counter()
        counts = write_history(run_dir, history)
        write_s = time.perf_counter() - started
        peaks["written"] = peak_rss_mb()
        resident["written"] = rss_mb()
        parquet_bytes = (run_dir / "requests.parquet").stat().st_size
        started = time.perf_counter()
        judged = RunResult(run_dir, Verdict.VALID, metrics, steady=[steady], history=history)
        write_summary(run_dir, summarise(_facts(duration_s, counts), judged))
        resident["summarised"] = rss_mb()
        # As the runner's _publish: imported here (matplotlib is not loaded while a run
        # records), freed memory handed back first, the history read back from disk.
        from harness.report.run_report import write_run_report

        release_freed_memory()
        resident["released"] = rss_mb()
        write_run_report(run_dir)
        report_s = time.perf_counter() - started
        peaks["reported"] = peak_rss_mb()
    return {
        "requests": count,
        "probe_samples": probes,
        "base_rss_mb": round(base_mb, 1),
        "recorded_rss_mb": round(recorded_mb, 1),
        "memory_bytes_per_request": round((recorded_mb - base_mb) * 1e6 / count, 1),
        "request_log_bytes_per_request": round(as_log(history.requests).nbytes() / count, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_mb_by_phase": {phase: round(mb, 1) for phase, mb in peaks.items()},
        "rss_mb_after_phase": {phase: round(mb, 1) for phase, mb in resident.items()},
        "read_s": round(read_s, 2),
        "reader_cpu_us_per_request": round(read_cpu_s / count * 1e6, 2),
        "judge_s": round(judge_s, 2),
        "write_s": round(write_s, 2),
        "report_s": round(report_s, 2),
        "parquet_bytes_per_request": round(parquet_bytes / count, 1),
    }


def _facts(duration_s: float, counts: dict[str, int]) -> RunFacts:
    from harness.results import git_facts, host_facts
    from harness.store.summary import RecordCounts, RunStatus, TargetFacts

    return RunFacts(
        scenario="recording-memory-bench",
        status=RunStatus.FINISHED,
        release=None,
        started_at="2026-12-04T00:00:00Z",
        duration_s=duration_s,
        seed=1,
        harness=git_facts(),
        target=TargetFacts(name="bench"),
        host=host_facts(),
        records=RecordCounts(**counts),
        errors=[],
        schedule=[],
    )


def objects_bytes_per_request(count: int) -> dict[str, Any]:
    """In a fresh process: the same requests as one object each, as lists held them."""
    from harness.load import wire

    before = rss_mb()
    kept = [wire.parse_row(row) for row in rows(count)]
    after = rss_mb()
    return {"requests": len(kept), "bytes_per_request": round((after - before) * 1e6 / count, 1)}


def measure(quick: bool) -> Measurement:
    count, objects = (QUICK, OBJECTS_QUICK) if quick else (FULL, OBJECTS_FULL)
    run = python_json(["-m", "benchmarks.recording_memory", "--one", str(count)], 1800)
    as_objects = python_json(["-m", "benchmarks.recording_memory", "--objects", str(objects)], 900)
    minutes = round(count / RATE_PER_S / 60, 2)
    conditions = {"requests": count, "as_minutes_at_10000_per_s": minutes, "objects": objects}

    def figure(name: str, value: float | None, unit: str, better: Better, goal: str = "") -> Figure:
        return Figure(
            name=name, value=value, unit=unit, better=better, conditions=conditions, goal=goal
        )

    objects_ratio = ratio(as_objects["bytes_per_request"], run["memory_bytes_per_request"])
    figures = [
        figure("harness_peak_rss_mb", run["peak_rss_mb"], "MB", "lower", "<= 500 MB"),
        figure("request_parquet_bytes", run["parquet_bytes_per_request"], "B/request", "lower",
               "<= 50"),
        figure("request_memory_bytes", run["memory_bytes_per_request"], "B/request", "lower"),
        figure("request_memory_objects_over_columns", objects_ratio, "x", "higher"),
        figure("reader_cpu_us_per_request", run["reader_cpu_us_per_request"], "us", "lower"),
    ]  # fmt: skip
    return Measurement(
        figures,
        conditions={"feeder": "full speed, not paced", "workers_interleaved": WORKERS},
        details={"run": run, "objects": as_objects},
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recording_memory")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--one", type=int, help="record and judge this many requests, print JSON")
    mode.add_argument("--objects", type=int, help="keep this many as objects, print JSON")
    mode.add_argument("--feed", type=int, help="write this many as the load master would")
    options = parser.parse_args(argv)
    if options.feed is not None:
        feed(options.feed)
    elif options.one is not None:
        print(json.dumps(record_and_judge(options.one)))
    else:
        print(json.dumps(objects_bytes_per_request(options.objects)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
