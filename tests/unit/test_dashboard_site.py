"""The site as a whole on a fake results root: pages, relative links, suite runs, the swap."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from harness.catalog import Catalog
from harness.dashboard import build_dashboard
from harness.dashboard.build import MARKER_FILE
from harness.dashboard.suites import read_suite_runs
from harness.errors import InputError
from harness.verdicts import Verdict
from tests.summaries import a_summary, an_slo, metrics, started_at
from tests.summaries import write_run as write_summary_run


def write_run(
    root: Path, scenario: str, stamp: str, release: str | None, failover_ms: float | None
) -> Path:
    summary = a_summary(
        scenario=scenario,
        release=release,
        started_at=started_at(stamp),
        metrics=metrics(failover_ms=failover_ms, recovery_ms=500.0, downtime_ms=400.0),
        slos=[an_slo("failover_ms", failover_ms, Verdict.VALID, at_most=800)],
        verdict=Verdict.VALID if (failover_ms or 0) <= 800 else Verdict.INVALID,
    )
    return write_summary_run(root, scenario, stamp, summary)


def write_suite(root: Path, stamp: str, run_dir: str, with_report: bool) -> Path:
    suite_dir = root / "suites" / "nightly" / stamp
    suite_dir.mkdir(parents=True)
    document = {
        "suite": "nightly",
        "release": "v2",
        "started_at": f"2026-11-{stamp[6:8]}T{stamp[9:11]}:00:00Z",
        "finished_at": None,
        "verdict": "invalid",
        "runs": [
            {"scenario": "leader-kill", "repeat": 0, "run_dir": run_dir, "verdict": "invalid"}
        ],
        "availability": 0.9999,
        "projected_annual_downtime_s": 12000.0,
        "annual_downtime_budget_s": 9000.0,
    }
    (suite_dir / "suite.json").write_text(json.dumps(document))
    if with_report:
        (suite_dir / "suite-report.html").write_text("<html></html>")
    return suite_dir


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    first = write_run(root, "leader-kill", "20261101T100000.000001Z", "v1", 300.0)
    write_run(root, "leader-kill", "20261102T100000.000001Z", "v2", 900.0)
    write_run(root, "follower-kill", "20261102T110000.000001Z", "v2", None)
    (first / "report.html").write_text("<html></html>")
    write_suite(root, "20261102T120000.000000Z", "leader-kill/20261102T100000.000001Z", True)
    write_suite(root, "20261101T120000.000000Z", "leader-kill/20261101T100000.000001Z", False)
    (root / "suites" / "nightly" / "broken").mkdir()
    (root / "suites" / "nightly" / "broken" / "suite.json").write_text("{not json")
    Catalog(root).rebuild()
    return root


def relative_links(page: Path) -> list[str]:
    hrefs = re.findall(r'href="([^"]+)"', page.read_text())
    return [href for href in hrefs if not href.startswith(("http:", "https:", "#", "data:"))]


def test_site_has_index_releases_and_one_page_per_scenario(results_root: Path) -> None:
    site = build_dashboard(Catalog(results_root))
    assert site.directory == results_root / "dashboard"
    names = sorted(page.name for page in site.pages)
    assert names == [
        "index.html",
        "releases.html",
        "scenario-follower-kill.html",
        "scenario-leader-kill.html",
    ]
    assert (site.runs, site.suite_runs) == (3, 2)
    assert any("broken/suite.json" in problem for problem in site.problems)
    for page in site.pages:
        assert page.read_text().count('class="figure"') == (1 if "scenario-" in page.name else 0)
    # The SLO limit comes from the newest run's summary, read as a number, not as text.
    leader_kill = (site.directory / "scenario-leader-kill.html").read_text()
    assert "failover_ms &lt;= 800 ms" in leader_kill


def test_every_relative_link_resolves_and_falls_back_to_summary_json(results_root: Path) -> None:
    site = build_dashboard(Catalog(results_root))
    links: set[str] = set()
    for page in site.pages:
        for href in relative_links(page):
            assert (page.parent / unquote(href)).exists(), f"{page.name}: {href}"
            links.add(unquote(href))
    assert "../leader-kill/20261101T100000.000001Z/report.html" in links
    assert "../leader-kill/20261102T100000.000001Z/summary.json" in links
    assert "../suites/nightly/20261102T120000.000000Z/suite-report.html" in links
    assert "../suites/nightly/20261101T120000.000000Z/suite.json" in links


def test_index_headline_is_the_latest_suite_run(results_root: Path) -> None:
    index = build_dashboard(Catalog(results_root)).index.read_text()
    headline = index[: index.index("<h2>")]
    assert "99.9900" in headline
    assert "3.3" in headline  # 12000 s projected
    assert "budget 2.5 h" in headline
    assert "over budget" in headline


def test_links_are_relative_to_an_output_outside_the_results_root(
    results_root: Path, tmp_path: Path
) -> None:
    site = build_dashboard(Catalog(results_root), tmp_path / "elsewhere" / "site")
    for page in site.pages:
        for href in relative_links(page):
            assert (page.parent / unquote(href)).exists(), f"{page.name}: {href}"


def test_a_rebuild_replaces_the_site_and_leaves_no_temporary_directories(
    results_root: Path,
) -> None:
    catalog = Catalog(results_root)
    build_dashboard(catalog)
    (results_root / "dashboard" / "stale.html").write_text("old")
    write_run(results_root, "kafka-broker-kill", "20261103T100000.000001Z", "v2", None)
    catalog.rebuild()
    site = build_dashboard(catalog)
    assert not (site.directory / "stale.html").exists()
    assert (site.directory / "scenario-kafka-broker-kill.html").exists()
    leftovers = [path.name for path in results_root.iterdir() if path.name.startswith(".dash")]
    assert leftovers == []


def test_refuses_to_replace_a_directory_that_is_not_a_dashboard(
    results_root: Path, tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="not a dashboard"):
        build_dashboard(Catalog(results_root), precious)
    assert (precious / "thesis.tex").exists()
    assert not (precious / MARKER_FILE).exists()


def test_a_catalogued_run_deleted_from_disk_is_left_out(results_root: Path) -> None:
    gone = results_root / "follower-kill" / "20261102T110000.000001Z"
    (gone / "summary.json").unlink()
    site = build_dashboard(Catalog(results_root))
    assert site.runs == 2
    assert not (site.directory / "scenario-follower-kill.html").exists()
    assert any("no longer on disk" in problem for problem in site.problems)


def test_suite_runs_are_read_newest_first_skipping_latest_and_bad_files(
    results_root: Path,
) -> None:
    nightly = results_root / "suites" / "nightly"
    (nightly / "latest").symlink_to(nightly / "20261102T120000.000000Z")
    suite_runs, problems = read_suite_runs(results_root)
    assert [run.started_at for run in suite_runs] == [
        "2026-11-02T12:00:00Z",
        "2026-11-01T12:00:00Z",
    ]
    assert suite_runs[0].within_budget is False
    assert suite_runs[0].runs[0].run_dir == results_root / "leader-kill/20261102T100000.000001Z"
    assert len(problems) == 1


def test_an_empty_catalog_still_builds_a_site(tmp_path: Path) -> None:
    site = build_dashboard(Catalog(tmp_path / "empty"))
    assert [page.name for page in site.pages] == ["index.html", "releases.html"]
    assert "No runs in the catalog yet" in site.index.read_text()


def test_the_command_indexes_runs_made_before_the_catalog_existed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.commands import dashboard

    root = tmp_path / "results"
    write_run(root, "leader-kill", "20261101T100000.000001Z", "v1", 300.0)
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(root))
    output = tmp_path / "site"
    code = dashboard.run(argparse.Namespace(output=str(output), reindex=False))
    assert code == 0
    assert (output / "scenario-leader-kill.html").exists()
