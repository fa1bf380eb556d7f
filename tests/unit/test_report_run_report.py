from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.report.run_report import REPORT_FILE, number, write_run_report
from harness.store.summary import (
    SUMMARY_FILE,
    CheckSummary,
    FailoverSummary,
    FaultSummary,
    GitFacts,
    RecoverySpan,
    RigSummary,
    RunStatus,
    RunSummary,
    SteadyWindow,
    TargetFacts,
    write_summary,
)
from harness.verdicts import Verdict
from tests.summaries import DATA, a_summary, an_slo, metrics

MS = 1_000_000
S = 1_000_000_000
LOAD_START = 100 * S


def window(name: str, verdict: Verdict, rig: RigSummary | None) -> SteadyWindow:
    return SteadyWindow(
        window=name,
        verdict=verdict,
        requests=300,
        success_rate=1.0,
        latency_p99_ms=12.0,
        problems=[],
        rig=rig,
    )


def rig(busy: float, steal_max: float | None, **services: float) -> RigSummary:
    return RigSummary(
        samples=10,
        host_busy_pct_mean=busy,
        host_busy_pct_max=100.0,
        host_steal_pct_mean=None,
        host_steal_pct_max=steal_max,
        services_cpu_pct_mean=services,
        saturated=False,  # stored for readers of the file; the report judges from the figures
    )


KILL = FaultSummary(
    fault=0,
    repeat=0,
    type="kill",
    targets=["n1"],
    applied_ns=LOAD_START + 2 * S,
    healed_ns=LOAD_START + 3 * S,
    late_ms=0.4,
    leader_before="n1",
    term_before=1,
    leader_after="n2",
    term_after=2,
    removes_leader=True,
    recovered_ns=LOAD_START + 2800 * MS,
    recovery_ms=800.0,
    recovery_from_heal_ms=0.0,
)
SUMMARY = a_summary(
    scenario="leader-kill",
    release="v1.2",
    started_at="2026-11-24T18:56:24Z",
    duration_s=4.5,
    harness=GitFacts(commit="abc123", dirty=True),
    target=TargetFacts(name="reference", commit="def456", dirty=False),
    faults=[KILL],
    metrics=metrics(failover_ms=431.2, downtime_ms=450.0, recovery_ms=600.0),
    failovers=[
        FailoverSummary(
            fault=0,
            repeat=0,
            old_leader="n1",
            new_leader="n2",
            injected_ns=LOAD_START + 2 * S,
            elected_ns=LOAD_START + 2431 * MS,
            first_commit_ns=None,
            failover_ms=431.2,
            first_commit_ms=None,
            estimator="role_age",
        )
    ],
    recovery=RecoverySpan(
        first_fault_ns=LOAD_START + 2 * S, recovered_ns=LOAD_START + 2800 * MS, span_ms=800.0
    ),
    errors_by_kind={"unknown:connection reset": 3},
    slos=[
        an_slo("failover_ms", 431.2, Verdict.VALID, at_most=800),
        an_slo("recovery_ms", 600.0, Verdict.INVALID, at_most=500),
        an_slo("downtime_budget_ms", 450.0, Verdict.VALID, at_most=1500),
    ],
    steady_state=[window("before faults", Verdict.VALID, rig=None)],
    checks=[
        CheckSummary(
            name="no_lost_acks",
            verdict=Verdict.INVALID,
            counts={"missing_orders": 1},
            violations=["order <c-7> acked but missing on n2"],
            explanation="1 acked order lost",
        )
    ],
    verdict=Verdict.INVALID,
)


SCENARIO = "name: leader-kill\ndescription: Kill <the> leader.\ndowntime_budget_ms: 1500\n"


def write_run(run_dir: Path, summary: RunSummary | str, history: bool = True) -> Path:
    """A run directory: the summary (or a version-1 fixture file's name) and a history."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(summary, str):
        (run_dir / SUMMARY_FILE).write_text((DATA / summary).read_text())
    else:
        write_summary(run_dir, summary)
    if not history:
        return run_dir
    (run_dir / "scenario.yaml").write_text(SCENARIO)
    rows = []
    for i in range(40):  # 10 per second, every fourth slow, three lost to the fault
        intended = LOAD_START + i * 100 * MS
        outcome = "unknown" if 20 <= i < 23 else "acked"
        rows.append((intended, intended + MS, intended + (50 if i % 4 else 5) * MS, outcome))
    pd.DataFrame(rows, columns=["intended_ns", "start_ns", "end_ns", "outcome"]).to_parquet(
        run_dir / "requests.parquet"
    )
    probes = [
        (node, LOAD_START + t * 50 * MS, role)
        for t in range(80)
        for node, role in (
            ("n1", "leader" if t < 40 else "unreachable"),
            ("n2", "leader" if t > 48 else "follower"),
            ("n3", "follower"),
        )
    ]
    pd.DataFrame(probes, columns=["node", "arrival_ns", "role"]).to_parquet(
        run_dir / "probes.parquet"
    )
    fault_columns = ["fault_index", "repeat", "fault_type", "phase", "at_ns", "targets", "detail"]
    pd.DataFrame(
        [
            (0, 0, "kill", "applied", LOAD_START + 2 * S, '["n1"]', '{"signal": "SIGKILL"}'),
            (0, 0, "kill", "healed", LOAD_START + 3 * S, '["n1"]', "{}"),
        ],
        columns=fault_columns,
    ).to_parquet(run_dir / "faults.parquet")
    pd.DataFrame([("load", LOAD_START)], columns=["name", "at_ns"]).to_parquet(
        run_dir / "phases.parquet"
    )
    return run_dir


def test_full_report_has_every_section(tmp_path: Path) -> None:
    path = write_run_report(write_run(tmp_path / "run", SUMMARY))
    assert path == (tmp_path / "run" / REPORT_FILE).resolve()
    html = path.read_text()
    assert not list(path.parent.glob(".*partial"))  # written atomically
    assert html.count('class="figure"') == 2  # timeline and percentiles
    for text in (
        "leader-kill: run report",
        "Kill &lt;the&gt; leader.",
        'class="badge invalid large"',
        "v1.2",
        "431",  # the failover big number
        "Downtime vs budget",
        "450.0 ms of 1,500.0 ms",
        "order &lt;c-7&gt; acked but missing on n2",
        "unknown:connection reset",
        "abc123 (dirty)",
        "def456",
        "<pre>name: leader-kill",
        "signal=SIGKILL",
        "n1 → n2",  # the leader before the kill and by its heal
        "role age",  # how the election was placed
    ):
        assert text in html, text
    assert html.count('<tr class="fail">') == 2  # the broken SLO and the failed check
    assert "not recorded" not in html


def test_steady_state_shows_how_busy_the_rig_was(tmp_path: Path) -> None:
    busy = rig(93.4, 21.0)
    summary = SUMMARY.model_copy(
        update={
            "steady_state": [window("after recovery", Verdict.INVALID, busy)],
            "rig": rig(93.4, 21.0, gateway=21.3, n2=19.0),
        }
    )
    html = write_run_report(write_run(tmp_path / "run", summary)).read_text()
    for text in ("host CPU busy %", "93.4", "21.0", "gateway 21 %", "The rig was saturated"):
        assert text in html, text
    calm = SUMMARY.model_copy(update={"rig": rig(60.0, None)})
    html = write_run_report(write_run(tmp_path / "calm", calm)).read_text()
    assert "60 % busy" in html
    assert "saturated" not in html


def test_a_version_1_summary_still_reports(tmp_path: Path) -> None:
    """A run recorded before the typed summary: everything it stored is shown; the recovery
    instant it did not store is estimated from recovery_ms, and the leaders are "-"."""
    html = write_run_report(write_run(tmp_path / "run", "v1-leader-kill.json")).read_text()
    for text in (
        "leader-kill: run report",
        'class="badge invalid large"',
        "950",  # the failover big number
        "1,003.0 ms of 1,500.0 ms",  # the budget, from the downtime_budget_ms SLO
        "&gt;= 0 and &lt;= 0.01",  # a bound shown as version 1 wrote it
        "order &lt;c-7&gt; acked but missing on n2",
        "mid request",
        "The rig was saturated",
        "schema version 2",  # read into the current model
    ):
        assert text in html, text
    assert html.count('class="figure"') == 2
    assert "not recorded" not in html


def test_aborted_run_without_history_or_checks_still_reports(tmp_path: Path) -> None:
    summary = a_summary(
        status=RunStatus.ABORTED, verdict=Verdict.UNKNOWN, errors=["topology did not come up"]
    )
    html = write_run_report(write_run(tmp_path / "run", summary, history=False)).read_text()
    assert "was <strong>aborted</strong>" in html
    assert 'class="badge unknown large"' in html
    assert "topology did not come up" in html
    assert 'class="figure"' not in html
    # Timeline, percentiles, SLOs, checks, steady state, fault log, scenario.
    assert html.count("not recorded") >= 7


def test_number_formatting() -> None:
    assert number(None) == "-"
    assert number(1234.56) == "1,234.6"
    assert number(0.0214) == "0.0214"
    assert number(7) == "7"
    assert number("x") == "x"


def test_report_command_writes_and_prints_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(tmp_path))
    run_dir = write_run(tmp_path / "leader-kill" / "20260101T000000.000000Z", SUMMARY)
    (tmp_path / "latest").symlink_to(run_dir.relative_to(tmp_path))
    assert main(["report", str(tmp_path / "latest")]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / REPORT_FILE)
    (run_dir / REPORT_FILE).unlink()
    monkeypatch.chdir(tmp_path / "leader-kill")  # "latest" alone: relative to the results root
    assert main(["report", "latest"]) == 0
    assert (run_dir / REPORT_FILE).is_file()


def test_report_command_rejects_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "summary.json: missing" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "absent")]) == 2
