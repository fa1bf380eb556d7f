"""`hftchaos suite` end to end on the real reference topology: a two-scenario suite, one run
that passes and one built to break its failover SLO, so the failure path is real. The suite
must go on past the failure, exit 1, and leave JUnit XML, suite.json and a suite report that
loads in a real browser with its figures."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from harness.paths import results_root
from harness.report.browser import check_page, chromium_available
from harness.store.summary import load_summary

REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOT = REPOSITORY / "results" / "screenshots" / "suite-report.png"

# A leader kill short enough for a test; the steady-state tolerances are wide because this
# test is about the suite, not about how fast a busy two-core machine answers.
SHORT_LEADER_KILL = """\
name: {name}
load: {{rate_per_s: 100, duration_s: 5, warmup_s: 1}}
steady_state: {{window_s: 1, success_rate_min: 0.5, latency_p99_ms_max: 3000}}
faults:
  - type: kill
    at_s: 1.5
    target: {{role: engine, select: leader}}
    restart_after_s: 1
settle_s: 1
checks: []
slo:
  failover_ms: {{max: {failover_max}}}
"""

SUITE = """\
name: smoke
release: it-{name}
scenarios:
  - file: quick-leader-kill.yaml
  - file: impossible-failover.yaml
availability:
  annual_downtime_budget_s: 9000
  baseline_annual_downtime_s: 144000
  incidents_per_year: {{leader_loss: 24}}
"""


def test_a_suite_goes_on_past_a_failed_slo_and_reports_it(tmp_path: Path) -> None:
    (tmp_path / "quick-leader-kill.yaml").write_text(
        SHORT_LEADER_KILL.format(name="quick-leader-kill", failover_max=10_000)
    )
    (tmp_path / "impossible-failover.yaml").write_text(
        SHORT_LEADER_KILL.format(name="impossible-failover", failover_max=1)
    )
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(SUITE.format(name=tmp_path.name))
    junit_copy = tmp_path / "ci" / "junit.xml"
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "suite", str(suite_file), "--junit", str(junit_copy)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPOSITORY,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 1, output
    assert "Traceback" not in output

    cases = ElementTree.parse(junit_copy).getroot().findall("testsuite/testcase")
    assert [case.get("name") for case in cases] == [
        "quick-leader-kill[1]",
        "impossible-failover[1]",
    ]
    assert [case.find("error") for case in cases] == [None, None], output
    failures = [case.find("failure") for case in cases]
    assert failures[0] is None, failures[0].text if failures[0] is not None else ""
    failure = failures[1]
    assert failure is not None
    assert "SLO failover_ms" in (failure.text or "")
    assert "limit <= 1" in (failure.text or "")

    suite_dir = (results_root() / "suites" / "smoke" / "latest").resolve()
    document = json.loads((suite_dir / "suite.json").read_text())
    assert document["release"] == f"it-{tmp_path.name}"
    assert [run["verdict"] for run in document["runs"]] == ["valid", "invalid"]
    for run in document["runs"]:
        summary = load_summary(results_root() / run["run_dir"])
        assert run["downtime_ms"] is not None
        # The rig was sampled from /proc: the host and every service that served orders.
        rig = summary.rig
        assert rig is not None and rig.host_busy_pct_mean > 0
        assert {"n1", "n2", "n3", "gateway"} <= set(rig.services_cpu_pct_mean)
        assert rig.services_cpu_pct_mean["gateway"] > 0
        assert all(window.rig for window in summary.steady_state)
    # The suite's figures, recomputed from its own runs by the model it states: availability
    # = 1 - downtime / load time; one leader_loss class, 24 incidents a year, each costing the
    # median downtime of its runs (of two, their mean).
    runs = document["runs"]
    assert [run["fault_class"] for run in runs] == ["leader_loss", "leader_loss"]
    assert [run["load_duration_s"] for run in runs] == [5, 5]
    downtimes_ms = [float(run["downtime_ms"]) for run in runs]
    assert document["availability"] == pytest.approx(1 - sum(downtimes_ms) / 1000 / 10)
    assert document["projected_annual_downtime_s"] == pytest.approx(
        24 * statistics.median(downtimes_ms) / 1000
    )
    assert (suite_dir / "junit.xml").read_bytes() == junit_copy.read_bytes()

    report = suite_dir / "suite-report.html"
    assert report.exists()
    assert chromium_available(), "the suite report must be checked in headless Chromium"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page = check_page(report, SCREENSHOT)
    assert page.loaded and page.errors == [], page
    assert (page.figures, page.broken_figures) == (2, 0), page
    assert SCREENSHOT.stat().st_size > 10_000
