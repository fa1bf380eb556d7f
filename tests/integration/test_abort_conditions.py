"""An abort condition that trips stops the run, heals, and reports it aborted with exit 1.

Every gateway-engine link goes down a second into a 30 s load, so every order fails; the
scenario's error-rate condition (above 50 % for 1.5 s) must stop the run within seconds,
heal the links (the journal and the fault history say so) and mark it aborted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from harness.store.summary import RunStatus, load_summary
from tests.integration.small_topology import small_topology

LOAD_S = 30


def test_an_error_rate_condition_stops_heals_and_aborts(tmp_path: Path) -> None:
    scenario = tmp_path / "abort.yaml"
    scenario.write_text(
        "name: abort-on-errors\n"
        f"topology: {small_topology(tmp_path)}\n"
        f"load: {{rate_per_s: 40, duration_s: {LOAD_S}, warmup_s: 0}}\n"
        "steady_state: {window_s: 1}\n"
        "checks: []\n"
        "abort:\n  error_rate: {above: 0.5, for_s: 1.5}\n"
        "faults:\n"
        "  - {type: link_down, at_s: 1, duration_s: 20,"
        " link: {from: gateway, to: {role: engine, select: all}}}\n"
    )
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(scenario)],
        env={**os.environ, "HFTCHAOS_RESULTS": str(results)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    run_dir = next(results.glob("abort-on-errors/*/summary.json")).parent
    summary = load_summary(run_dir)
    assert summary.status is RunStatus.ABORTED and not summary.passed
    assert summary.stopped_by is not None and "abort.error_rate" in summary.stopped_by
    assert summary.errors == [], summary.errors
    load = pd.read_parquet(run_dir / "requests.parquet")
    load_span_s = (load["end_ns"].max() - load["intended_ns"].min()) / 1e9
    assert load_span_s < LOAD_S / 2, f"the load ran {load_span_s:.1f} s: it was not stopped"
    phases = pd.read_parquet(run_dir / "faults.parquet")["phase"].tolist()
    assert phases == ["applied", "healed"], phases
    assert summary.healing is not None and summary.healing.errors == []
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    assert [line["entry"] for line in journal if line["entry"] in ("fault", "healed")] == [
        "fault",
        "healed",
    ]
    assert journal[-1] == {"entry": "run_healed", "by": "the harness", "errors": []}
