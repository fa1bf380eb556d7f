"""Faults are healed however the harness stops: SIGTERM mid-fault heals and exits 130; a
SIGKILLed harness takes its services with it, and its kernel rules are swept afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.faults.netfilter import list_rules, parse_tag

SCENARIO = """
name: stop-mid-fault
load: {rate_per_s: 50, duration_s: 40}
steady_state: {window_s: 1}
faults:
  - {type: partition, at_s: 1.5, duration_s: 30, isolate: {role: engine, select: leader}}
"""


def _run_ids_with_rules() -> set[str]:
    return {tag[0] for rule in list_rules() if (tag := parse_tag(rule.tag)) is not None}


def _service_processes(marker: str) -> list[int]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if marker in " ".join(process.info["cmdline"] or []):
            found.append(process.info["pid"])
    return found


def _start_mid_fault(tmp_path: Path) -> tuple[subprocess.Popen[bytes], set[str]]:
    scenario = tmp_path / "stop.yaml"
    scenario.write_text(SCENARIO)
    before = _run_ids_with_rules()
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario)],
        env={**os.environ, "HFTCHAOS_RESULTS": str(tmp_path / "results")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while not _run_ids_with_rules() - before:
        assert harness.poll() is None, "the harness ended before the partition was applied"
        assert time.monotonic() < deadline, "the partition never appeared"
        time.sleep(0.1)
    return harness, _run_ids_with_rules() - before


def test_sigterm_mid_fault_heals_and_tears_down(tmp_path: Path) -> None:
    harness, run_ids = _start_mid_fault(tmp_path)
    harness.send_signal(signal.SIGTERM)
    assert harness.wait(timeout=90) == 130
    assert not (_run_ids_with_rules() & run_ids), "partition rules survived SIGTERM"
    assert _service_processes(str(tmp_path / "results")) == []
    summary = json.loads(
        next((tmp_path / "results").glob("stop-mid-fault/*/summary.json")).read_text()
    )
    assert summary["status"] == "aborted"
    assert any(f["phase"] == "healed" for f in _faults(tmp_path))


def _faults(tmp_path: Path) -> list[dict[str, object]]:
    import pandas as pd

    frame = pd.read_parquet(next((tmp_path / "results").glob("stop-mid-fault/*/faults.parquet")))
    return frame.to_dict("records")  # type: ignore[no-any-return]


def test_sigkill_mid_fault_services_die_and_sweep_removes_rules(tmp_path: Path) -> None:
    harness, run_ids = _start_mid_fault(tmp_path)
    harness.send_signal(signal.SIGKILL)
    harness.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _service_processes(str(tmp_path / "results")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _service_processes(str(tmp_path / "results")) == [], "services outlived the harness"
    assert run_ids <= _run_ids_with_rules(), "nothing to sweep: the test proves nothing"
    sweep = subprocess.run(
        [sys.executable, "-m", "harness.cli", "sweep"], capture_output=True, text=True, timeout=60
    )
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert not (_run_ids_with_rules() & run_ids)


@pytest.fixture(autouse=True)
def _no_leftover_rules() -> Iterator[None]:
    yield
    from harness.faults.stale import sweep_dead_runs

    sweep_dead_runs()
