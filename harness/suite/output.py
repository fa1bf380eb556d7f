"""Where a suite run goes: <results root>/suites/<suite name>/<UTC stamp>/ with suite.json
(written last, atomically), junit.xml and suite-report.html, and a `latest` link beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.paths import results_root, utc_stamp
from harness.store.atomic import point_link, write_text_atomically
from harness.suite.outcome import RunOutcome
from harness.suite.projection import Projection, availability, project
from harness.suite.runner import SuiteResult

SUITE_FILE = "suite.json"
JUNIT_FILE = "junit.xml"
REPORT_FILE = "suite-report.html"


def new_suite_dir(suite_name: str) -> Path:
    suite_dir = results_root() / "suites" / suite_name / utc_stamp()
    suite_dir.mkdir(parents=True)
    return suite_dir


def _relative(path: Path | None, root: Path) -> str | None:
    return os.path.relpath(path, root) if path is not None else None


def _run_entry(outcome: RunOutcome, root: Path) -> dict[str, Any]:
    return {
        "scenario": outcome.scenario,
        "repeat": outcome.repeat,
        "run_dir": _relative(outcome.run_dir, root),
        "verdict": outcome.verdict,
        "failures": outcome.failures,
        "downtime_ms": outcome.downtime_ms,
        "failover_ms": outcome.metric("failover_ms"),
        "recovery_ms": outcome.metric("recovery_ms"),
        "fault_class": outcome.fault_class,
        "state": outcome.state.value,
        "error": outcome.error,
        "duration_s": round(outcome.duration_s, 3),
        "load_duration_s": outcome.load_duration_s,
    }


def _projection_entry(projection: Projection) -> dict[str, Any]:
    return {
        "annual_s": projection.annual_s,
        "annual_p95_s": projection.annual_p95_s,
        "budget_s": projection.budget_s,
        "baseline_s": projection.baseline_s,
        "within_budget": projection.within_budget,
        "classes": [
            {
                "fault_class": c.fault_class,
                "incidents_per_year": c.incidents_per_year,
                "runs": c.runs,
                "median_downtime_ms": c.median_downtime_ms,
                "p95_downtime_ms": c.p95_downtime_ms,
                "annual_s": c.annual_s,
                "annual_p95_s": c.annual_p95_s,
            }
            for c in projection.classes
        ],
        "model": projection.explanation(),
    }


def suite_document(result: SuiteResult, root: Path) -> dict[str, Any]:
    """The agreed suite.json: the dashboard reads the first keys; the rest is detail."""
    model = result.loaded.suite.availability
    projection = project(result.outcomes, model)
    return {
        "suite": result.name,
        "release": result.release,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "verdict": result.verdict.value,
        "runs": [_run_entry(outcome, root) for outcome in result.outcomes],
        "availability": availability(result.outcomes),
        "projected_annual_downtime_s": projection.annual_s,
        "annual_downtime_budget_s": model.annual_downtime_budget_s,
        "projected_annual_downtime_p95_s": projection.annual_p95_s,
        "baseline_annual_downtime_s": model.baseline_annual_downtime_s,
        "status": result.status,
        "stopped_by": result.stopped_by,
        "interrupted_by": str(result.interrupted_by) if result.interrupted_by else None,
        "file": str(result.loaded.file.resolve()),
        "planned_runs": result.loaded.total_runs,
        "share_topology": result.loaded.suite.share_topology,
        "projection": _projection_entry(projection),
    }


def write_suite_json(result: SuiteResult, suite_dir: Path, root: Path) -> Path:
    path = suite_dir / SUITE_FILE
    document = suite_document(result, root)
    write_text_atomically(path, json.dumps(document, indent=2, default=str) + "\n")
    return path


def point_suite_latest(suite_dir: Path) -> None:
    link = suite_dir.parent / "latest"
    point_link(link, suite_dir)
