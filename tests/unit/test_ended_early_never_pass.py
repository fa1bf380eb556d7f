"""A run that ended early (interrupted, aborted) is never a pass for any reader, even with a
verdict of valid (which the runner never writes for one, so a reader must not rely on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalog import entry_from_summary, failures_of
from harness.compare.model import compare_runs
from harness.dashboard.trends import passed
from harness.store.summary import RunStatus
from harness.suite.outcome import CaseState, RunOutcome
from harness.verdicts import Verdict
from tests.summaries import a_summary, metrics

EARLY = [RunStatus.INTERRUPTED, RunStatus.ABORTED]


@pytest.mark.parametrize("status", EARLY)
def test_the_summary_and_the_catalog_do_not_count_it(status: RunStatus) -> None:
    summary = a_summary(status=status, verdict=Verdict.VALID, stopped_by="abort.error_rate: x")
    assert not summary.passed
    entry = entry_from_summary(Path("/r/leader-kill/1"), summary)
    assert not entry.passed and not passed(entry)  # the catalog and the dashboard
    assert failures_of(summary)[0] == f"run {status.value}: abort.error_rate: x"


def test_a_finished_valid_run_is_a_pass() -> None:
    assert a_summary().passed
    assert entry_from_summary(Path("/r/leader-kill/1"), a_summary()).passed


@pytest.mark.parametrize("status", EARLY)
def test_the_suite_fails_its_case(status: RunStatus) -> None:
    outcome = RunOutcome(
        scenario="leader-kill",
        repeat=1,
        fault_class="leader_process",
        run_dir=None,
        verdict="valid",
        duration_s=1.0,
        load_duration_s=1.0,
        status=status.value,
    )
    assert outcome.state is CaseState.FAILED


@pytest.mark.parametrize("status", EARLY)
def test_compare_leaves_it_out(status: RunStatus) -> None:
    def entry(stamp: str, run_status: RunStatus) -> object:
        summary = a_summary(status=run_status, metrics=metrics(failover_ms=400.0))
        return entry_from_summary(Path(f"/r/leader-kill/{stamp}"), summary)

    finished = [entry("1", RunStatus.FINISHED)]
    comparison = compare_runs("a", "b", finished, [entry("2", status)])  # type: ignore[list-item]
    assert comparison.skipped == {"leader-kill": "no finished runs of release b"}
