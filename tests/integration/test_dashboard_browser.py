"""`hftchaos dashboard` over real runs of two releases, opened in headless Chromium: every page
loads without errors, each scenario page shows its trend figure, and every relative link (run
reports, suite reports, other pages) leads to a file that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

from harness.dashboard.build import DASHBOARD_DIR
from harness.report.browser import check_page, chromium_available
from tests.integration.conftest import TwoReleaseResults

REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPOSITORY / "results" / "screenshots"


def relative_links(page: Path) -> list[str]:
    hrefs = re.findall(r'href="([^"]+)"', page.read_text())
    return [unquote(href) for href in hrefs if not re.match(r"^[a-z]+:|^#", href)]


def test_dashboard_of_two_releases_renders_in_chromium(
    two_quick_releases: TwoReleaseResults,
) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "dashboard"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPOSITORY,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    site = two_quick_releases.results_root / DASHBOARD_DIR

    scenario_page = site / f"scenario-{two_quick_releases.scenario}.html"
    text = scenario_page.read_text()
    for release in (two_quick_releases.baseline, two_quick_releases.candidate):
        assert f">{release}<" in text, f"release {release} missing from {scenario_page.name}"
    runs = sum(len(dirs) for dirs in two_quick_releases.run_dirs.values())
    assert text.count('class="badge') >= runs  # one verdict per run in its runs table

    pages = sorted(site.glob("*.html"))
    assert {"index.html", "releases.html", scenario_page.name} <= {page.name for page in pages}
    for page in pages:
        for link in relative_links(page):
            assert (page.parent / link).exists(), f"{page.name} links to missing {link}"

    assert chromium_available(), "the dashboard must be checked in headless Chromium"
    for page in pages:
        screenshot = SCREENSHOTS / f"dashboard-{page.stem}.png"
        check = check_page(page, screenshot)
        expected_figures = 1 if page.name.startswith("scenario-") else 0
        assert check.loaded and check.errors == [], (page.name, check)
        assert (check.figures, check.broken_figures) == (expected_figures, 0), (page.name, check)
        assert screenshot.stat().st_size > 10_000
