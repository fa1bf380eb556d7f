"""The run report opened in a real headless Chromium: a short leader-kill run is reported, the
page loads without errors and every figure decodes. A page with a broken image must fail the
same check, so a passing check means something."""

from __future__ import annotations

import os
from pathlib import Path

from harness.backends.local import LocalBackend
from harness.report.browser import check_page, chromium_available
from harness.report.html import page
from harness.report.run_report import write_run_report
from harness.runner import run_scenario
from harness.store.summary import load_summary

SCREENSHOTS = Path(__file__).resolve().parents[2] / "results" / "screenshots"

SHORT_LEADER_KILL = """\
name: report-leader-kill
description: Kill the engine's Raft leader 3 s into 8 s of light load; restart it 2 s later.
load: {rate_per_s: 100, duration_s: 8}
steady_state: {window_s: 1.0, success_rate_min: 0.99, latency_p99_ms_max: 250}
faults:
  - type: kill
    at_s: 3
    target: {role: engine, select: leader}
    restart_after_s: 2
slo:
  failover_ms: {max: 2000}
  downtime_ms: {max: 3000}
downtime_budget_ms: 3000
checks: [no_lost_acks, replicas_identical]
"""


def test_run_report_opens_cleanly_in_chromium(
    shared_topology: LocalBackend, tmp_path: Path
) -> None:
    assert chromium_available(), "needs chromium, chromium-driver (apt) and selenium"
    scenario = tmp_path / "report-leader-kill.yaml"
    scenario.write_text(SHORT_LEADER_KILL)
    result = run_scenario(scenario, "report-test", lambda _message: None, running=shared_topology)
    assert Path(os.environ["HFTCHAOS_RESULTS"]) in result.run_dir.parents
    report = write_run_report(result.run_dir)

    check = check_page(report, SCREENSHOTS / "run-report.png")

    assert check.loaded
    assert check.errors == []
    assert check.figures >= 2
    assert check.broken_figures == 0
    html = report.read_text()
    assert "report-leader-kill: run report" in html and "not recorded" not in html
    # What the report used to rebuild is in the summary, typed: the kill's leaders, the span.
    summary = load_summary(result.run_dir)
    assert summary == result.summary
    [kill] = summary.faults
    assert kill.removes_leader and kill.late_ms is not None
    assert kill.leader_before is not None and kill.leader_after not in (None, kill.leader_before)
    assert summary.recovery is not None and summary.recovery.first_fault_ns == kill.applied_ns
    assert f"{kill.leader_before} → {kill.leader_after}" in html
    assert (SCREENSHOTS / "run-report.png").stat().st_size > 50_000


def test_check_page_reports_a_broken_figure_and_a_script_error(tmp_path: Path) -> None:
    assert chromium_available(), "needs chromium, chromium-driver (apt) and selenium"
    broken = tmp_path / "broken.html"
    body = (
        '<figure><img class="figure" alt="truncated" src="data:image/png;base64,iVBORw0K"></figure>'
        '<figure><img class="figure" alt="absent" src="absent.png"></figure>'
        "<script>throw new Error('figure code crashed')</script>"
    )
    broken.write_text(page("broken", body))

    check = check_page(broken, SCREENSHOTS / "broken-page.png")

    assert check.loaded
    assert check.figures == 0 and check.broken_figures == 2
    assert not check.ok
    assert any("absent.png" in error for error in check.errors)
    assert any("figure code crashed" in error for error in check.errors)
