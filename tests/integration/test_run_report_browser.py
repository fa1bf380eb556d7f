"""The run report opened in a real headless Chromium: a short leader-kill run is reported, the
page loads without errors and every figure decodes. A page with a broken image must fail the
same check, so a passing check means something."""

from __future__ import annotations

import os
from pathlib import Path

from harness.report.browser import check_page, chromium_available
from harness.report.html import page
from harness.report.run_report import write_run_report
from harness.store.summary import load_summary
from tests.integration.conftest import TwoReleaseResults

SCREENSHOTS = Path(__file__).resolve().parents[2] / "results" / "screenshots"


def test_run_report_opens_cleanly_in_chromium(two_quick_releases: TwoReleaseResults) -> None:
    """A leader-kill run made on the shared topology (one of the dashboard's two releases:
    the same kind of run, made once for both tests)."""
    assert chromium_available(), "needs chromium, chromium-driver (apt) and selenium"
    run_dir = two_quick_releases.run_dirs[two_quick_releases.candidate][0]
    assert Path(os.environ["HFTCHAOS_RESULTS"]) in run_dir.parents
    report = write_run_report(run_dir)

    check = check_page(report, SCREENSHOTS / "run-report.png")

    assert check.loaded
    assert check.errors == []
    assert check.figures >= 2
    assert check.broken_figures == 0
    html = report.read_text()
    assert "quick-leader-kill: run report" in html and "not recorded" not in html
    # What the report used to rebuild is in the summary, typed: the kill's leaders, the span.
    summary = load_summary(run_dir)
    assert [check.name for check in summary.checks] == ["no_lost_acks", "replicas_identical"]
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
