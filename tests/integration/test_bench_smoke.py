"""`hftchaos bench --quick` end to end, as CI runs it: the benchmarks that need no extra
tools (the load path needs Vegeta and nginx, provisioned by `nox -s bench`, minutes on a fresh
machine), one document written, the table printed, and a regression flagged by --compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.figures import load_document

pytestmark = pytest.mark.integration

QUICK = ("judging_scaling", "recording_memory", "http_handler_cost", "fault_actuation")


def bench(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_quick_bench_writes_one_document_and_compare_flags_a_regression(tmp_path: Path) -> None:
    ran = bench("--quick", "--only", ",".join(QUICK), "--output-dir", str(tmp_path))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [written] = tmp_path.glob("*.json")
    document = load_document(written)
    assert document.quick and set(document.benchmarks) == set(QUICK)
    assert all(entry.status == "ok" and entry.figures for entry in document.benchmarks.values())
    assert document.conditions["cores"] == os.cpu_count()
    assert "checks_us_per_order" in ran.stdout and str(written) in ran.stdout
    assert "harness_peak_rss_mb" in ran.stdout

    assert bench("--compare", str(written), str(written)).returncode == 0
    raw = json.loads(written.read_text())
    for figure in raw["benchmarks"]["http_handler_cost"]["figures"]:
        if figure["name"] == "server_us_per_request_lean":
            figure["value"] *= 3  # three times the CPU per request
    worse = tmp_path / "worse.json"
    worse.write_text(json.dumps(raw))
    compared = bench("--compare", str(written), str(worse))
    assert compared.returncode == 1
    assert "regressed    http_handler_cost.server_us_per_request_lean" in compared.stdout


def test_an_unknown_benchmark_is_bad_input() -> None:
    ran = bench("--only", "no_such_bench")
    assert ran.returncode == 2 and "no_such_bench" in ran.stdout
