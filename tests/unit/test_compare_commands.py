"""`hftchaos compare` and `hftchaos runs` on synthetic run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tests.summaries import a_summary, metrics, write_run

FAST = (400.0, 420.0, 390.0)
SLOW = (950.0, 990.0, 1010.0)


def write_runs(root: Path, version_1_releases: tuple[str, ...] = ()) -> None:
    """Three leader-kill runs of release fast, three of slow; the releases named written as
    version-1 summaries (the hand-built dictionary of earlier harnesses)."""
    for index, (release, failover) in enumerate(
        [("fast", value) for value in FAST] + [("slow", value) for value in SLOW]
    ):
        stamp = f"20261124T1000{index:02d}.000000Z"
        figures = {
            "failover_ms": failover,
            "recovery_ms": failover + 100,
            "downtime_ms": failover,
            "error_rate": 0.01,
        }
        if release in version_1_releases:
            run_dir = root / "leader-kill" / stamp
            run_dir.mkdir(parents=True)
            old = {
                "scenario": "leader-kill",
                "status": "finished",
                "release": release,
                "started_at": f"2026-11-24T10:00:{index:02d}Z",
                "metrics": figures,
                "verdict": "valid",
            }
            (run_dir / "summary.json").write_text(json.dumps(old))
            continue
        summary = a_summary(
            release=release, started_at=f"2026-11-24T10:00:{index:02d}Z", metrics=metrics(**figures)
        )
        write_run(root, "leader-kill", stamp, summary)


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three leader-kill runs of release fast, three of slow, indexed in the catalog."""
    root = tmp_path / "results"
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(root))
    monkeypatch.setenv("COLUMNS", "200")
    write_runs(root)
    assert main(["runs", "--rebuild"]) == EXIT_OK
    return root


def test_a_version_1_baseline_compares_like_a_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs recorded before the typed summary stay comparable with runs made after it."""
    root = tmp_path / "results"
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(root))
    monkeypatch.setenv("COLUMNS", "200")
    write_runs(root, version_1_releases=("fast",))
    assert main(["runs", "--rebuild"]) == EXIT_OK
    assert "indexed 6 runs" in capsys.readouterr().out
    assert main(["compare", "--baseline", "fast", "--candidate", "slow"]) == EXIT_FAILED
    failover = next(line for line in capsys.readouterr().out.splitlines() if "failover_ms" in line)
    assert "regression" in failover and "+148%" in failover


def test_runs_rebuild_says_which_runs_it_left_out(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unreadable = results / "leader-kill" / "20261124T100099.000000Z"
    unreadable.mkdir()
    (unreadable / "summary.json").write_text('{"schema_version": 9}')
    capsys.readouterr()
    assert main(["runs", "--rebuild"]) == EXIT_OK
    output = capsys.readouterr().out
    assert "indexed 6 runs" in output
    assert "left out:" in output and "schema_version 9" in output


def test_compare_flags_the_regression_and_writes_the_page(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--baseline", "fast", "--candidate", "slow"]) == EXIT_FAILED
    output = capsys.readouterr().out
    failover = next(line for line in output.splitlines() if "failover_ms" in line)
    assert "regression" in failover
    assert "+148%" in failover  # medians: 990 against 400 ms
    page = (results / "compare" / "fast-vs-slow.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('class="figure"') == 1  # one figure for the one scenario
    assert "regression" in page


def test_compare_a_release_with_itself_passes(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = results / "elsewhere" / "same.html"
    assert main(["compare", "--baseline", "fast", "--candidate", "fast", "--html", str(html)]) == 0
    assert "no regression" in capsys.readouterr().out
    assert html.is_file()


def test_a_generous_threshold_lets_the_slowdown_pass(results: Path) -> None:
    arguments = ["compare", "--baseline", "fast", "--candidate", "slow", "--threshold", "2"]
    assert main(arguments) == EXIT_OK


def test_an_unknown_release_lists_the_known_ones(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--baseline", "fast", "--candidate", "v9"]) == EXIT_BAD_INPUT
    output = capsys.readouterr().out
    assert "'v9'" in output
    assert "known releases: fast, slow" in output


def test_no_common_scenario_is_bad_input(results: Path) -> None:
    arguments = ["compare", "--baseline", "fast", "--candidate", "slow", "--scenario", "other"]
    assert main(arguments) == EXIT_BAD_INPUT


def test_runs_lists_and_filters(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["runs", "--release", "slow", "--limit", "2"]) == EXIT_OK
    output = capsys.readouterr().out
    assert "2 runs" in output
    assert "1,010.0" in output and "990.0" in output and "950.0" not in output
    assert main(["runs", "--scenario", "nothing"]) == EXIT_OK
    assert "no runs match" in capsys.readouterr().out
