"""Running a suite with fake scenario runs: it goes on past failed and erring runs, stops on
an interruption, a missing toolchain or errors run after run, and exits 0 / 1 / 3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import BackendError, ToolchainError
from harness.lifecycle import Interrupted
from harness.runner import RunResult
from harness.store.summary import CheckSummary, RunSummary, SloSummary, SteadyWindow
from harness.suite import LoadedSuite, PlannedScenario, load_suite, run_suite
from harness.suite.outcome import CaseState, failures_from_summary
from harness.verdicts import Verdict
from tests.summaries import a_summary, an_slo, metrics

SUITE = Path(__file__).resolve().parents[1] / "data" / "suites" / "two.yaml"

BROKEN_FAILOVER = an_slo(
    "failover_ms",
    912.5,
    Verdict.INVALID,
    at_most=800,
    explanation="912.500 breaks the limit 800",
)


def summary(downtime_ms: float, slos: list[SloSummary] | None = None) -> RunSummary:
    return a_summary(
        metrics=metrics(downtime_ms=downtime_ms, failover_ms=400.0, recovery_ms=900.0),
        slos=slos or [],
    )


def fake_runs(
    behaviour: Callable[[str, int], RunResult | BaseException],
) -> Callable[[PlannedScenario, int], RunResult]:
    def run_one(planned: PlannedScenario, repeat: int) -> RunResult:
        outcome = behaviour(planned.name, repeat)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return run_one


def valid(tmp_path: Path, name: str, repeat: int, downtime_ms: float = 300.0) -> RunResult:
    run_dir = tmp_path / name / f"run{repeat}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunResult(run_dir, Verdict.VALID, None, summary=summary(downtime_ms))


def invalid(tmp_path: Path, name: str, repeat: int) -> RunResult:
    run_dir = tmp_path / name / f"run{repeat}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunResult(run_dir, Verdict.INVALID, None, summary=summary(950.0, [BROKEN_FAILOVER]))


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An erring run's directory is looked for under the results root: keep it in tmp."""
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(tmp_path / "results"))


@pytest.fixture
def loaded() -> LoadedSuite:
    return load_suite(SUITE)


def test_every_repeat_runs_in_order_and_all_valid_exits_0(
    loaded: LoadedSuite, tmp_path: Path
) -> None:
    seen: list[str] = []

    def behaviour(name: str, repeat: int) -> RunResult:
        seen.append(f"{name}[{repeat}]")
        return valid(tmp_path, name, repeat)

    result = run_suite(loaded, "rc1", fake_runs(behaviour), lambda _: None)
    assert seen == [
        "leader-kill[1]",
        "leader-kill[2]",
        "leader-kill[3]",
        "leader-packet-loss-moderate[1]",
    ]
    assert result.exit_code == 0
    assert result.verdict is Verdict.VALID
    assert result.status == "finished"
    assert result.started_at <= result.finished_at
    assert [o.fault_class for o in result.outcomes] == ["leader_loss"] * 3 + ["network"]


def test_failures_and_harness_errors_do_not_stop_the_suite(
    loaded: LoadedSuite, tmp_path: Path
) -> None:
    def behaviour(name: str, repeat: int) -> RunResult | Exception:
        if repeat == 2:
            return invalid(tmp_path, name, repeat)
        if repeat == 3:
            return BackendError("engine n2 did not become healthy within 30 s")
        if name == "leader-packet-loss-moderate":
            return ZeroDivisionError("a bug")
        return valid(tmp_path, name, repeat)

    result = run_suite(loaded, None, fake_runs(behaviour), lambda _: None)
    states = [o.state for o in result.outcomes]
    assert states == [CaseState.PASSED, CaseState.FAILED, CaseState.ERROR, CaseState.ERROR]
    assert result.exit_code == 1
    assert result.verdict is Verdict.INVALID
    failed = result.outcomes[1]
    assert failed.failures == [
        "SLO failover_ms = 912.5 (limit <= 800): invalid: 912.500 breaks the limit 800"
    ]
    assert failed.downtime_ms == 950.0
    assert result.outcomes[2].error == "engine n2 did not become healthy within 30 s"
    assert "internal error (a bug in hftchaos): ZeroDivisionError: a bug" in (
        result.outcomes[3].error or ""
    )


def test_errors_run_after_run_stop_the_suite_with_exit_3(
    loaded: LoadedSuite, tmp_path: Path
) -> None:
    def behaviour(name: str, repeat: int) -> Exception:
        return BackendError("address 127.0.0.11:7001 is in use")

    result = run_suite(loaded, None, fake_runs(behaviour), lambda _: None)
    assert len(result.outcomes) == 3  # the fourth was never started
    assert result.status == "stopped"
    assert "3 runs in a row ended in a harness error" in (result.stopped_by or "")
    assert result.exit_code == 3
    assert result.verdict is Verdict.UNKNOWN


def test_a_missing_toolchain_stops_the_suite_at_once(loaded: LoadedSuite, tmp_path: Path) -> None:
    def behaviour(name: str, repeat: int) -> Exception:
        return ToolchainError("java not found; install Java 17")

    result = run_suite(loaded, None, fake_runs(behaviour), lambda _: None)
    assert len(result.outcomes) == 1
    assert result.exit_code == 3


def test_an_interruption_stops_the_suite_and_keeps_what_finished(
    loaded: LoadedSuite, tmp_path: Path
) -> None:
    def behaviour(name: str, repeat: int) -> RunResult | BaseException:
        if repeat == 2:
            return Interrupted(15)
        return valid(tmp_path, name, repeat)

    result = run_suite(loaded, None, fake_runs(behaviour), lambda _: None)
    assert [o.state for o in result.outcomes] == [CaseState.PASSED, CaseState.ERROR]
    assert isinstance(result.interrupted_by, Interrupted)
    assert result.status == "interrupted"
    assert "interrupted (stopped by SIGTERM)" in (result.outcomes[1].error or "")
    assert result.verdict is Verdict.UNKNOWN  # not everything ran


def test_failure_lines_name_slos_windows_checks_and_errors() -> None:
    lines = failures_from_summary(
        a_summary(
            slos=[
                BROKEN_FAILOVER,
                BROKEN_FAILOVER.model_copy(
                    update={"metric": "error_rate", "verdict": Verdict.VALID}
                ),
            ],
            steady_state=[
                SteadyWindow(
                    window="after recovery",
                    verdict=Verdict.INVALID,
                    requests=100,
                    success_rate=1.0,
                    latency_p99_ms=120.0,
                    problems=["p99 120 > 100"],
                    rig=None,
                )
            ],
            checks=[
                CheckSummary(
                    name="no_lost_acks",
                    verdict=Verdict.INVALID,
                    counts={},
                    violations=["order x lost"],
                    explanation="1 lost",
                ),
                CheckSummary(
                    name="kafka_gap_free",
                    verdict=Verdict.VALID,
                    counts={},
                    violations=[],
                    explanation="fine",
                ),
                CheckSummary(  # the target does not provide it: no failure
                    name="replicas_identical",
                    verdict=Verdict.NOT_APPLICABLE,
                    counts={},
                    violations=[],
                    explanation="target generic provides no check 'replicas_identical'",
                ),
            ],
            errors=["fault 0 could not be injected"],
        )
    )
    assert lines == [
        "SLO failover_ms = 912.5 (limit <= 800): invalid: 912.500 breaks the limit 800",
        "steady state after recovery: invalid: p99 120 > 100",
        "check no_lost_acks: invalid: order x lost",
        "harness error: fault 0 could not be injected",
    ]


def test_an_interruption_between_runs_is_kept_too(loaded: LoadedSuite, tmp_path: Path) -> None:
    def progress(message: str) -> None:
        if "leader-kill[2]" in message and "passed" in message:
            raise KeyboardInterrupt

    def behaviour(name: str, repeat: int) -> RunResult:
        return valid(tmp_path, name, repeat)

    result = run_suite(loaded, None, fake_runs(behaviour), progress)
    assert len(result.outcomes) == 2
    assert isinstance(result.interrupted_by, KeyboardInterrupt)
    assert result.finished_at
