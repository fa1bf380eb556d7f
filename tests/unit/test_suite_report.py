"""What a suite leaves behind: the pass/fail matrix, suite.json with the agreed keys, the
suite report with its figures and relative links, and the `latest` link."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.commands.suite import write_outputs
from harness.paths import utc_stamp
from harness.suite import SuiteResult, load_suite, run_suite
from harness.suite.outcome import RunOutcome
from harness.suite.output import new_suite_dir
from harness.suite.report import pass_fail_matrix

SUITE = Path(__file__).resolve().parents[1] / "data" / "suites" / "two.yaml"


def outcome(scenario: str, repeat: int, verdict: str, run_dir: Path | None) -> RunOutcome:
    return RunOutcome(
        scenario=scenario,
        repeat=repeat,
        fault_class="leader_loss" if scenario == "leader-kill" else "network",
        run_dir=run_dir,
        verdict=verdict,
        duration_s=20.0,
        load_duration_s=10.0,
        failures=[] if verdict == "valid" else ["SLO failover_ms = 900 (limit <= 800): invalid"],
        metrics={"downtime_ms": 200.0 * repeat, "failover_ms": 300.0, "recovery_ms": None},
        downtime_budget_ms=1500,
    )


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "results"
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(root))
    return root


def finished_suite(results: Path) -> SuiteResult:
    result = SuiteResult(load_suite(SUITE), "rc1", "2026-11-24T19:00:00Z", "2026-11-24T19:01:00Z")
    for repeat in (1, 2, 3):
        run_dir = results / "leader-kill" / f"2026112{repeat}T000000Z"
        run_dir.mkdir(parents=True)
        verdict = "invalid" if repeat == 2 else "valid"
        result.outcomes.append(outcome("leader-kill", repeat, verdict, run_dir))
    (result.outcomes[0].run_dir or Path()).joinpath("report.html").write_text("<html></html>")
    result.outcomes.append(outcome("leader-packet-loss-moderate", 1, "valid", None))
    return result


def test_the_matrix_is_scenario_by_repeat_as_planned() -> None:
    planned = load_suite(SUITE).scenarios  # leader-kill x 3, leader-packet-loss-moderate x 1
    outcomes = [
        outcome("leader-kill", 1, "valid", None),
        outcome("leader-kill", 2, "invalid", None),  # the third never ran
    ]
    columns, rows = pass_fail_matrix(outcomes, planned)
    assert columns == 3
    assert [(row.scenario, row.fault_class, row.planned) for row in rows] == [
        ("leader-kill", "leader_loss", 3),
        ("leader-packet-loss-moderate", "network", 1),
    ]
    assert [c.verdict if c else None for c in rows[0].cells] == ["valid", "invalid", None]
    assert rows[1].cells == [None]  # planned, never ran
    assert pass_fail_matrix([], []) == (0, [])


def test_suite_json_has_the_agreed_keys(results: Path) -> None:
    suite_dir = new_suite_dir("two")
    write_outputs(finished_suite(results), suite_dir, None)
    document = json.loads((suite_dir / "suite.json").read_text())
    assert document["suite"] == "two"
    assert document["release"] == "rc1"
    assert document["verdict"] == "invalid"
    assert (document["started_at"], document["finished_at"]) == (
        "2026-11-24T19:00:00Z",
        "2026-11-24T19:01:00Z",
    )
    first = document["runs"][0]
    assert {k: first[k] for k in ("scenario", "repeat", "run_dir", "verdict", "failures")} == {
        "scenario": "leader-kill",
        "repeat": 1,
        "run_dir": "leader-kill/20261121T000000Z",  # relative to the results root
        "verdict": "valid",
        "failures": [],
    }
    assert (first["downtime_ms"], first["failover_ms"], first["recovery_ms"]) == (200, 300, None)
    # 200 + 400 + 600 + 200 ms down over 4 x 10 s of load
    assert document["availability"] == pytest.approx(1 - 1.4 / 40)
    # leader_loss: 24 x 0.4 s (median of 200, 400, 600); network: 52 x 0.2 s
    assert document["projected_annual_downtime_s"] == pytest.approx(24 * 0.4 + 52 * 0.2)
    assert document["annual_downtime_budget_s"] == 9000
    assert document["baseline_annual_downtime_s"] == 144000
    assert document["projection"]["model"][0].startswith("projected annual downtime = sum")
    latest = results / "suites" / "two" / "latest"
    assert latest.resolve() == suite_dir.resolve()
    assert (suite_dir / "junit.xml").exists()


def test_the_report_has_figures_matrix_model_and_relative_links(results: Path) -> None:
    suite_dir = new_suite_dir("two")
    write_outputs(finished_suite(results), suite_dir, results / "ci" / "junit.xml")
    html = (suite_dir / "suite-report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count('class="figure"') == 2
    assert "Pass/fail matrix" in html
    assert "24/year x 400.0 ms = 9.6 s" in html  # the model, spelled out
    assert "40.00 h" in html and "2.50 h" in html  # baseline and budget
    # run 1 has its report.html; run 2 does not yet, so its directory is linked
    assert 'href="../../../leader-kill/20261121T000000Z/report.html"' in html
    assert 'href="../../../leader-kill/20261122T000000Z"' in html
    assert "http" not in html.split("<body>")[1].replace("http-equiv", "")
    assert (results / "ci" / "junit.xml").read_bytes() == (suite_dir / "junit.xml").read_bytes()


def test_an_erring_run_is_matched_to_the_directory_it_made(results: Path) -> None:
    made: list[Path] = []

    def run_one(planned, repeat):  # type: ignore[no-untyped-def]
        run_dir = results / planned.name / utc_stamp()
        run_dir.mkdir(parents=True)
        made.append(run_dir)
        raise RuntimeError("the engine wrote garbage")

    result = run_suite(load_suite(SUITE), None, run_one, lambda _: None)
    assert [o.run_dir for o in result.outcomes] == made[: len(result.outcomes)]


def test_sigterm_mid_suite_writes_what_finished_then_stops(
    results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.commands import suite as command
    from harness.lifecycle import Interrupted
    from harness.runner import RunResult
    from harness.verdicts import Verdict
    from tests.summaries import a_summary, metrics

    def scenario_runner(release: str | None, backend: str | None = None, shared: object = None):  # type: ignore[no-untyped-def]
        def run_one(planned, repeat):  # type: ignore[no-untyped-def]
            if repeat == 2:
                raise Interrupted(15)
            run_dir = results / planned.name / "first"
            run_dir.mkdir(parents=True)
            summary = a_summary(metrics=metrics(downtime_ms=100.0))
            return RunResult(run_dir, Verdict.VALID, None, summary=summary)

        return run_one

    monkeypatch.setattr(command, "scenario_runner", scenario_runner)
    arguments = argparse.Namespace(suite=str(SUITE), release=None, junit=None, backend=None)
    with pytest.raises(Interrupted):
        command.run(arguments)
    suite_dir = (results / "suites" / "two" / "latest").resolve()
    document = json.loads((suite_dir / "suite.json").read_text())
    assert document["status"] == "interrupted"
    assert document["release"] == "rc1"  # the suite's own label
    assert [run["state"] for run in document["runs"]] == ["passed", "error"]
    assert (suite_dir / "junit.xml").exists() and (suite_dir / "suite-report.html").exists()
