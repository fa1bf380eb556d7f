"""Faults are healed however the harness stops: SIGTERM mid-fault heals and exits 130; a
SIGKILLed harness takes its services with it, and its kernel rules are swept afterwards.

Survivors are looked for by the run marker in the environment (harness.run_marker), which
every process of the run carries: the test first checks that each service of the topology
and the load generator do carry it, so a service the scan could not see fails the test,
and `test_the_survivor_scan_sees_a_process_left_alive` shows that the scan finds one."""

from __future__ import annotations

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
from harness.run_marker import RUN_MARKER_VARIABLE
from harness.store.summary import RunStatus, load_summary

SCENARIO = """
name: stop-mid-fault
load: {rate_per_s: 50, duration_s: 40}
steady_state: {window_s: 1}
faults:
  - {type: partition, at_s: 1.5, duration_s: 30, isolate: {role: engine, select: leader}}
"""


def _run_ids_with_rules() -> set[str]:
    return {tag[0] for rule in list_rules() if (tag := parse_tag(rule.tag)) is not None}


# Every long-running process of the reference topology, and the load generator.
EXPECTED_PROCESSES = {"toxiproxy", "kafka", "n1", "n2", "n3", "gateway", "consumer", "load"}
LOAD_MODULES = {"harness.load.master", "harness.load.worker"}  # Locust's master and workers


def _marked_processes(results: Path) -> dict[int, str]:
    """pid -> what it is, for every live process whose run marker lies under `results`.

    Read here from /proc through psutil, not through the harness's own helper, so that a
    fault in that helper cannot hide a survivor."""
    found = {}
    for process in psutil.process_iter():
        try:
            environment = process.environ()
            marker = environment.get(RUN_MARKER_VARIABLE)
            if marker is None or process.status() == psutil.STATUS_ZOMBIE:
                continue
            if not Path(marker).is_relative_to(results.resolve()):
                continue
            is_load = bool(LOAD_MODULES & set(process.cmdline()))
            found[process.pid] = "load" if is_load else environment.get("HFTCHAOS_SERVICE", "?")
        except psutil.Error:
            continue
    return found


def _survivors(results: Path) -> dict[int, str]:
    return _marked_processes(results)


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
    # The scan below must be able to see every process of the run, or it proves nothing.
    seen = set(_marked_processes(tmp_path / "results").values())
    assert seen >= EXPECTED_PROCESSES, f"not marked as the run's: {EXPECTED_PROCESSES - seen}"
    return harness, _run_ids_with_rules() - before


def test_sigterm_mid_fault_heals_and_tears_down(tmp_path: Path) -> None:
    harness, run_ids = _start_mid_fault(tmp_path)
    harness.send_signal(signal.SIGTERM)
    assert harness.wait(timeout=90) == 130
    assert not (_run_ids_with_rules() & run_ids), "partition rules survived SIGTERM"
    assert _survivors(tmp_path / "results") == {}
    summary = load_summary(
        next((tmp_path / "results").glob("stop-mid-fault/*/summary.json")).parent
    )
    assert summary.status is RunStatus.INTERRUPTED
    assert summary.faults, "the fault applied before the stop is in the summary"
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
    while _survivors(tmp_path / "results") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _survivors(tmp_path / "results") == {}, "processes outlived the harness"
    assert run_ids <= _run_ids_with_rules(), "nothing to sweep: the test proves nothing"
    sweep = subprocess.run(
        [sys.executable, "-m", "harness.cli", "sweep"], capture_output=True, text=True, timeout=60
    )
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert not (_run_ids_with_rules() & run_ids)


def test_the_survivor_scan_sees_a_process_left_alive(tmp_path: Path) -> None:
    """A process of the run that escaped the harness (its own session, no parent-death
    signal) is what the SIGKILL test must catch: the scan finds it by its marker alone."""
    run_dir = tmp_path / "results" / "stop-mid-fault" / "20260101T000000Z"
    run_dir.mkdir(parents=True)
    escaped = subprocess.Popen(
        ["sleep", "60"],
        env={**os.environ, RUN_MARKER_VARIABLE: str(run_dir), "HFTCHAOS_SERVICE": "gateway"},
        start_new_session=True,
    )
    try:
        # Polled for a moment: once in CI (962 other tests passed) the first scan right after
        # the spawn saw nothing, which this test alone never reproduced.
        deadline = time.monotonic() + 5
        while not _survivors(tmp_path / "results") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _survivors(tmp_path / "results") == {escaped.pid: "gateway"}
        assert _survivors(tmp_path / "elsewhere") == {}
    finally:
        escaped.kill()
        escaped.wait()
    assert _survivors(tmp_path / "results") == {}


@pytest.fixture(autouse=True)
def _no_leftover_rules() -> Iterator[None]:
    yield
    from harness.faults.stale import sweep_dead_runs

    sweep_dead_runs()
