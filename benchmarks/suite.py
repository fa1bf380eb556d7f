"""All benchmarks in one go: `hftchaos bench` / `nox -s bench` / `python -m benchmarks.suite`.

Each benchmark module has `measure(quick) -> Measurement`; this runs them one after the other
(a failed one is recorded with its error and the rest still run), writes one document
`results/bench/<UTC stamp>.json` (`benchmarks.figures`) and prints a table. `--quick` is the
CI smoke variant: every benchmark at its smallest size, to prove the bench works, not to
measure. `--baseline FILE` compares the new document with an older one afterwards.

The host's busy share during each benchmark is recorded next to its figures: this machine is
shared, and a figure measured while something else ran says so.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.figures import BenchDocument, BenchEntry, Measurement, write_document
from harness.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_OK
from harness.paths import results_root
from harness.results import git_facts

# In the order they run; the cheap ones first so a quick run fails fast.
BENCHMARKS = (
    "judging_scaling",
    "recording_memory",
    "http_handler_cost",
    "harness_overhead",
    "fault_actuation",
    "load_path",
    "order_path",
    "failover",
    "faketime_cost",
)
PACKAGES = ("locust", "gevent", "geventhttpclient", "pysyncobj", "confluent-kafka")


Measure = Callable[[bool], Measurement]


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole host, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(part) for part in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    total = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / total, 1) if total else None


def run_one(name: str, quick: bool) -> BenchEntry:
    module = importlib.import_module(f"benchmarks.{name}")
    measure: Measure = module.measure
    started, cpu_before = time.monotonic(), cpu_times()
    try:
        measured = measure(quick)
    except Exception as error:  # one broken benchmark must not cost the others' figures
        return BenchEntry(
            status="failed",
            seconds=round(time.monotonic() - started, 1),
            notes=[f"{type(error).__name__}: {error}", traceback.format_exc(limit=6)],
        )
    conditions = {**measured.conditions, "host_busy_pct": busy_share(cpu_before, cpu_times())}
    return BenchEntry(
        status="ok",
        seconds=round(time.monotonic() - started, 1),
        figures=measured.figures,
        conditions=conditions,
        details=measured.details,
        notes=measured.notes,
    )


def machine_conditions() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "harness": git_facts().model_dump(mode="json"),
        "hostname": platform.node(),
    }


def run_suite(chosen: Sequence[str], quick: bool, say: Callable[[str], None]) -> BenchDocument:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    conditions, started = machine_conditions(), time.monotonic()
    entries = {}
    for name in chosen:
        say(f"benchmark {name}{' (quick)' if quick else ''} ...")
        entries[name] = run_one(name, quick)
        say(f"benchmark {name}: {entries[name].status} in {entries[name].seconds:.0f}s")
    return BenchDocument(
        schema="hftchaos-bench/1",
        stamp=stamp,
        quick=quick,
        seconds=round(time.monotonic() - started, 1),
        conditions=conditions,
        benchmarks=entries,
    )


def figure_table(document: BenchDocument) -> Table:
    table = Table(title=f"bench {document.stamp}{' (quick)' if document.quick else ''}")
    for column in ("benchmark", "figure", "value", "unit", "goal", "conditions"):
        table.add_column(column, overflow="fold")
    for name, entry in document.benchmarks.items():
        if entry.status != "ok":
            table.add_row(name, entry.status, "", "", "", entry.notes[0] if entry.notes else "")
        for figure in entry.figures:
            value = "n/a" if figure.value is None else f"{figure.value:.4g}"
            shown = ", ".join(f"{key}={value}" for key, value in figure.conditions.items())
            table.add_row(name, figure.name, value, figure.unit, figure.goal, shown)
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smallest sizes: a CI smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated of {','.join(BENCHMARKS)}")
    parser.add_argument("--baseline", type=Path, help="afterwards, compare with this bench JSON")
    parser.add_argument("--output-dir", type=Path, help="default: <results>/bench")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BASELINE", "CANDIDATE"),
        help="run nothing: compare two bench JSONs, exit 1 on a regression",
    )


def run_from_arguments(options: argparse.Namespace) -> int:
    from benchmarks.compare import main as compare_main

    if options.compare:
        return compare_main([str(path) for path in options.compare])
    chosen = [name.strip() for name in options.only.split(",") if name.strip()] or BENCHMARKS
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return EXIT_BAD_INPUT
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)
    document = run_suite(chosen, options.quick, lambda text: console.print(text, markup=False))
    path = write_document(document, options.output_dir or results_root() / "bench")
    console.print(figure_table(document))
    console.print(f"written to {path} in {document.seconds:.0f}s", markup=False)
    if options.baseline is not None:
        compared = compare_main([str(options.baseline), str(path)])
        if compared:
            return compared
    failed = [entry for entry in document.benchmarks.values() if entry.status == "failed"]
    return EXIT_ENVIRONMENT if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__)
    add_arguments(parser)
    return run_from_arguments(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
