"""The run summary document: written once and read back equal, strict about what it holds,
versioned, and published as JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import SummaryError
from harness.store.summary import (
    SCHEMA_FILE,
    SUMMARY_FILE,
    Bound,
    CheckSummary,
    FailoverSummary,
    FaultSummary,
    LatencyByPhase,
    LatencyFigures,
    LoadSpan,
    RecoverySpan,
    RigSummary,
    RunSummary,
    ScheduleStep,
    SloSummary,
    SteadyWindow,
    TargetFacts,
    load_summary,
    summary_schema,
    write_summary,
)
from harness.verdicts import Verdict
from tests.summaries import a_summary, metrics

S = 1_000_000_000


def full_summary() -> RunSummary:
    """Every section filled in, with values of every kind (None, nested, enums, maps)."""
    figures = LatencyFigures(count=10, p50_ms=1.5, p99_ms=9.0, p999_ms=None, max_ms=12.25)
    rig = RigSummary(
        samples=4,
        host_busy_pct_mean=71.2,
        host_busy_pct_max=90.0,
        host_steal_pct_mean=None,
        host_steal_pct_max=None,
        services_cpu_pct_mean={"n1": 20.5, "(harness)": 9.0},
        saturated=False,
    )
    return a_summary(
        release="v1.2",
        target=TargetFacts(name="own", object_path="own_checks:TARGET", commit=None),
        schedule=[ScheduleStep(offset_s=1.5, action="apply", fault=0, repeat=0)],
        load=LoadSpan(started_ns=100 * S, ended_ns=110 * S),
        faults=[
            FaultSummary(
                fault=0,
                repeat=0,
                type="partition",
                targets=["n1"],
                applied_ns=101 * S,
                healed_ns=103 * S,
                late_ms=0.8,
                leader_before="n1",
                term_before=3,
                leader_after="n2",
                term_after=4,
                removes_leader=True,
                recovered_ns=104 * S,
                recovery_ms=3000.0,
                recovery_from_heal_ms=1000.0,
            )
        ],
        metrics=metrics(failover_ms=412.5, error_rate=0.02, kafka_lag_max=None),
        errors_by_kind={"unknown:timeout": 3},
        failovers=[
            FailoverSummary(
                fault=0,
                repeat=0,
                old_leader="n1",
                new_leader="n2",
                injected_ns=101 * S,
                elected_ns=101 * S + 412_500_000,
                first_commit_ns=None,
                failover_ms=412.5,
                first_commit_ms=None,
                estimator="role_age",
            )
        ],
        recovery=RecoverySpan(first_fault_ns=101 * S, recovered_ns=104 * S, span_ms=3000.0),
        latency_by_phase=LatencyByPhase(before=figures, during=figures, after=figures),
        slos=[
            SloSummary(
                metric="error_rate",
                value=0.02,
                bound=Bound(min=0.0, max=0.05),
                bound_text=">= 0 and <= 0.05",
                verdict=Verdict.VALID,
                explanation="within the limit",
            )
        ],
        checks=[
            CheckSummary(
                name="no_lost_acks",
                verdict=Verdict.INVALID,
                counts={"missing_orders": 1},
                violations=["order c-7 acked but missing on n2"],
                explanation="1 lost",
            ),
            CheckSummary(
                name="kafka_gap_free",
                verdict=Verdict.NOT_APPLICABLE,
                counts={},
                violations=[],
                explanation="target own provides no check 'kafka_gap_free' (its checks: none)",
            ),
        ],
        steady_state=[
            SteadyWindow(
                window="after recovery",
                verdict=Verdict.UNKNOWN,
                requests=0,
                success_rate=None,
                latency_p99_ms=None,
                problems=["only 0 requests in the window (need 50)"],
                rig=rig,
            )
        ],
        rig=rig,
    )


def test_a_summary_is_read_back_equal_to_what_was_written(tmp_path: Path) -> None:
    summary = full_summary()
    path = write_summary(tmp_path, summary)
    assert path == tmp_path / SUMMARY_FILE
    assert not list(tmp_path.glob(".*partial"))  # written atomically
    assert load_summary(tmp_path) == summary
    document = json.loads(path.read_text())
    assert next(iter(document)) == "schema_version" and document["schema_version"] == 2
    assert document["verdict"] == "valid" and document["status"] == "finished"  # enums as text


def test_the_model_refuses_unknown_fields_and_wrong_types(tmp_path: Path) -> None:
    document = json.loads(full_summary().model_dump_json())
    for broken, problem in (
        ({**document, "verdcit": "valid"}, "verdcit: Extra inputs are not permitted"),
        ({**document, "seed": "7"}, "seed: Input should be a valid integer"),
        (
            {**document, "verdict": "fine"},
            "verdict: Input should be 'valid', 'unknown', 'invalid' or",
        ),
        ({**document, "metrics": {"failover_ms": "fast"}}, "metrics.failover_ms"),
    ):
        (tmp_path / SUMMARY_FILE).write_text(json.dumps(broken))
        with pytest.raises(SummaryError, match="not a valid run summary") as raised:
            load_summary(tmp_path)
        assert problem in str(raised.value)


def test_a_newer_summary_is_refused_with_the_reason(tmp_path: Path) -> None:
    document = {**json.loads(full_summary().model_dump_json()), "schema_version": 3}
    (tmp_path / SUMMARY_FILE).write_text(json.dumps(document))
    with pytest.raises(SummaryError, match="schema_version 3; this hftchaos reads versions 1 to 2"):
        load_summary(tmp_path)


def test_metrics_are_looked_up_by_name() -> None:
    summary = a_summary(metrics=metrics(failover_ms=400.0))
    assert summary.metric("failover_ms") == 400.0
    assert summary.metric("recovery_ms") is None
    assert summary.metric("no_such_metric") is None
    assert a_summary().metric("failover_ms") is None  # not judged
    assert set(metrics().by_name()) >= {"failover_ms", "downtime_ms", "error_rate"}


def test_the_published_schema_is_current() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(
        json.dumps(summary_schema(), sort_keys=True)
    ), "results/summary.schema.json is stale: run `hftchaos schema`"
    schema = summary_schema()
    assert schema["properties"]["schema_version"]["const"] == 2  # type: ignore[index]
    assert schema["additionalProperties"] is False


def test_the_schema_command_writes_both_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, summary = tmp_path / "scenario.json", tmp_path / "deep" / "summary.json"
    arguments = ["schema", "--output", str(scenario), "--summary-output", str(summary)]
    assert main(arguments) == 0
    assert json.loads(summary.read_text())["title"] == "hftchaos run summary (summary.json)"
    assert json.loads(scenario.read_text())["title"] == "hftchaos scenario"
    assert str(summary) in capsys.readouterr().out
