from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.catalog import CATALOG_FILE, SCHEMA_VERSION, Catalog, failures_of, open_catalog
from harness.store.summary import (
    SUMMARY_FILE,
    CheckSummary,
    RunStatus,
    SteadyWindow,
    load_summary,
    write_summary,
)
from harness.verdicts import Verdict
from tests.summaries import a_summary, an_slo, metrics, started_at, write_v1_run
from tests.summaries import write_run as write_summary_run


def write_run(
    root: Path,
    scenario: str,
    stamp: str,
    release: str | None = None,
    verdict: Verdict = Verdict.VALID,
    **extra: Any,
) -> Path:
    """A run directory with a synthetic summary.json, named like the harness names them."""
    summary = a_summary(
        scenario=scenario,
        release=release,
        started_at=started_at(stamp),
        metrics=metrics(failover_ms=400.0, error_rate=0.01, recovery_ms=None),
        checks=[check("no_lost_acks", Verdict.VALID, "fine")],
        verdict=verdict,
        **extra,
    )
    return write_summary_run(root, scenario, stamp, summary)


def check(name: str, verdict: Verdict, explanation: str) -> CheckSummary:
    return CheckSummary(
        name=name, verdict=verdict, counts={}, violations=[], explanation=explanation
    )


def window(name: str, verdict: Verdict, problems: list[str]) -> SteadyWindow:
    return SteadyWindow(
        window=name,
        verdict=verdict,
        requests=100,
        success_rate=1.0,
        latency_p99_ms=None,
        problems=problems,
        rig=None,
    )


STAMP_1 = "20261124T100000.000001Z"
STAMP_2 = "20261124T110000.000001Z"
STAMP_3 = "20261124T120000.000001Z"


def test_index_run_reads_the_summary(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "leader-kill", STAMP_1, release="v1")
    entry = Catalog(tmp_path).index_run(run_dir)
    assert entry is not None
    assert entry.path == run_dir.resolve()
    assert (entry.scenario, entry.release, entry.verdict, entry.status) == (
        "leader-kill",
        "v1",
        "valid",
        "finished",
    )
    assert entry.harness_commit == "abc123"
    assert entry.target_version == "def456"
    assert entry.started_at == "2026-11-24T10:00:00Z"
    assert {k: v for k, v in entry.metrics.items() if v is not None} == {
        "failover_ms": 400.0,
        "error_rate": 0.01,
    }
    assert entry.metrics["recovery_ms"] is None
    assert entry.checks == {"no_lost_acks": "valid"}
    assert entry.failures == []
    assert Catalog(tmp_path).runs() == [entry]  # stored, and read back equal


def test_a_directory_without_summary_is_not_indexed(tmp_path: Path) -> None:
    unfinished = tmp_path / "leader-kill" / STAMP_1
    unfinished.mkdir(parents=True)
    catalog = Catalog(tmp_path)
    assert catalog.index_run(unfinished) is None
    assert catalog.runs() == []


def test_indexing_twice_replaces_the_row(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "leader-kill", STAMP_1, verdict=Verdict.UNKNOWN)
    catalog = Catalog(tmp_path)
    catalog.index_run(run_dir)
    summary = load_summary(run_dir)
    write_summary(run_dir, summary.model_copy(update={"verdict": Verdict.INVALID}))
    catalog.index_run(run_dir)
    assert [entry.verdict for entry in catalog.runs()] == ["invalid"]


def test_rebuild_finds_every_run_and_skips_links_and_other_output(tmp_path: Path) -> None:
    write_run(tmp_path, "leader-kill", STAMP_1)
    newest = write_run(tmp_path, "leader-kill", STAMP_2)
    write_run(tmp_path, "follower-kill", STAMP_3)
    write_run(tmp_path, "suites", STAMP_3)  # a suite's directory is not a scenario run
    (tmp_path / "leader-kill" / "latest").symlink_to(newest.name)
    (tmp_path / "latest").symlink_to(newest)
    catalog = Catalog(tmp_path)
    catalog.index_run(tmp_path / "ghost")  # nothing there: ignored
    assert catalog.rebuild() == 3
    assert catalog.scenarios() == ["follower-kill", "leader-kill"]
    assert len({entry.path for entry in catalog.runs()}) == 3


def test_rebuild_forgets_deleted_runs(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "leader-kill", STAMP_1)
    catalog = Catalog(tmp_path)
    catalog.index_run(run_dir)
    (run_dir / SUMMARY_FILE).unlink()
    assert catalog.rebuild() == 0
    assert catalog.runs() == []


def test_filters_order_and_limit(tmp_path: Path) -> None:
    write_run(tmp_path, "leader-kill", STAMP_1, release="v1", verdict=Verdict.VALID)
    write_run(tmp_path, "leader-kill", STAMP_2, release="v2", verdict=Verdict.INVALID)
    write_run(tmp_path, "follower-kill", STAMP_3, release="v2", verdict=Verdict.VALID)
    catalog = Catalog(tmp_path)
    catalog.rebuild()

    def stamps(**filters: Any) -> list[str]:
        return [entry.path.name for entry in catalog.runs(**filters)]

    assert stamps() == [STAMP_3, STAMP_2, STAMP_1]  # newest first
    assert stamps(scenario="leader-kill") == [STAMP_2, STAMP_1]
    assert stamps(release="v2") == [STAMP_3, STAMP_2]
    assert stamps(verdict="valid") == [STAMP_3, STAMP_1]
    assert stamps(release="v2", verdict="invalid") == [STAMP_2]
    assert stamps(limit=1) == [STAMP_3]
    assert stamps(scenario="nothing") == []
    assert catalog.releases() == ["v1", "v2"]


def test_runs_without_a_release_are_listed_but_not_a_release(tmp_path: Path) -> None:
    write_run(tmp_path, "leader-kill", STAMP_1)
    catalog = Catalog(tmp_path)
    catalog.rebuild()
    assert catalog.releases() == []
    assert len(catalog.runs()) == 1


def test_an_older_schema_is_dropped_and_rebuilt(tmp_path: Path) -> None:
    write_run(tmp_path, "leader-kill", STAMP_1)
    with sqlite3.connect(tmp_path / CATALOG_FILE) as old:
        old.execute("CREATE TABLE runs (path TEXT)")
        old.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 41}")
    catalog = Catalog(tmp_path)
    assert [entry.scenario for entry in catalog.runs()] == ["leader-kill"]
    with sqlite3.connect(catalog.file) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_open_catalog_defaults_to_the_results_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(tmp_path / "results"))
    catalog = open_catalog()
    assert catalog.file == (tmp_path / "results" / CATALOG_FILE).resolve()
    assert catalog.file.exists()


def test_a_moved_results_root_keeps_its_catalog(tmp_path: Path) -> None:
    write_run(tmp_path / "old", "leader-kill", STAMP_1)
    Catalog(tmp_path / "old").rebuild()
    (tmp_path / "old").rename(tmp_path / "new")
    [entry] = Catalog(tmp_path / "new").runs()
    assert entry.path == (tmp_path / "new" / "leader-kill" / STAMP_1).resolve()


def test_failures_name_every_broken_slo_check_and_window() -> None:
    summary = a_summary(
        slos=[
            an_slo("failover_ms", 950.06, Verdict.INVALID, at_most=800),
            an_slo("recovery_ms", 100.0, Verdict.VALID, at_most=2500),
            an_slo("error_rate", None, Verdict.UNKNOWN, at_most=0.05),
            an_slo("throughput", 12.0, Verdict.INVALID, at_least=50),
            an_slo("lag", 7.0, Verdict.INVALID, at_least=0, at_most=5),
        ],
        checks=[
            check("no_lost_acks", Verdict.INVALID, "3 acked orders lost"),
            check("kafka_gap_free", Verdict.VALID, "fine"),
            # A check the target does not provide is no failure.
            check("replicas_identical", Verdict.NOT_APPLICABLE, "target generic provides none"),
        ],
        steady_state=[
            window("after recovery", Verdict.INVALID, ["p99 101 > 100"]),
            window("before faults", Verdict.VALID, []),
        ],
    )
    assert failures_of(summary) == [
        "failover_ms 950.1 > 800",
        "error_rate not measured (limit <= 0.05)",
        "throughput 12.0 < 50",
        "lag 7.0 > 5",
        "no_lost_acks invalid: 3 acked orders lost",
        "steady state after recovery invalid: p99 101 > 100",
    ]


def test_an_aborted_run_says_why() -> None:
    summary = a_summary(status=RunStatus.ABORTED, errors=["BackendError: kafka did not start"])
    assert failures_of(summary) == ["run aborted: BackendError: kafka did not start"]


def test_version_1_summaries_are_indexed_beside_current_ones(tmp_path: Path) -> None:
    """A results root from before the typed summary: its runs are read through the converter,
    and their failures are the lines the old text-parsing catalog gave."""
    write_v1_run(tmp_path, "leader-kill", STAMP_1, "v1-leader-kill.json")
    write_v1_run(tmp_path, "leader-kill", STAMP_2, "v1-aborted.json")
    write_v1_run(tmp_path, "process-faults", STAMP_2, "v1-process-faults.json")
    write_run(tmp_path, "leader-kill", STAMP_3, release="v1.2")
    catalog = Catalog(tmp_path)
    assert catalog.rebuild() == 4 and catalog.unreadable == []
    by_stamp = {entry.path.name: entry for entry in catalog.runs(scenario="leader-kill")}
    old, aborted, current = (by_stamp[stamp] for stamp in (STAMP_1, STAMP_2, STAMP_3))
    assert current.failures == [] and current.release == old.release == "v1.2"
    assert (old.verdict, old.status, old.harness_commit) == (
        "invalid",
        "finished",
        "8317ed7c" + "0f3a9d1e2b4c5a6f7e8d9c0b1a2f3e4d",
    )
    assert old.metrics["failover_ms"] == 950.06 and old.duration_s == 31.207
    assert old.checks == {"no_lost_acks": "invalid", "kafka_gap_free": "valid"}
    assert old.failures == [
        "failover_ms 950.1 > 800",
        "error_rate 0.0122 > 0.01",
        "kafka_lag_max not measured (limit <= 100)",
        "no_lost_acks invalid: 3120 acked orders checked on 3 node(s)",
        "steady state after recovery invalid: p99 latency 101.0 ms > 100 ms",
    ]
    assert (aborted.status, aborted.verdict, aborted.metrics) == ("aborted", "unknown", {})
    assert aborted.failures == ["run aborted: BackendError: kafka did not start"]
    [real] = catalog.runs(scenario="process-faults")
    assert real.verdict == "valid" and real.metrics["recovery_ms"] == 369.733986
    assert len(real.checks) == 6 and real.failures == []


def test_a_catalog_of_another_layout_is_rebuilt_from_version_1_runs(tmp_path: Path) -> None:
    write_v1_run(tmp_path, "leader-kill", STAMP_1, "v1-leader-kill.json")
    with sqlite3.connect(tmp_path / CATALOG_FILE) as old:
        old.execute("CREATE TABLE runs (path TEXT)")
        old.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    [entry] = Catalog(tmp_path).runs()
    assert entry.release == "v1.2" and entry.failures[0] == "failover_ms 950.1 > 800"


def test_a_summary_this_harness_cannot_read_is_left_out_and_said(tmp_path: Path) -> None:
    write_run(tmp_path, "leader-kill", STAMP_1)
    newer = write_run(tmp_path, "leader-kill", STAMP_2)
    document = json.loads((newer / SUMMARY_FILE).read_text())
    (newer / SUMMARY_FILE).write_text(json.dumps({**document, "schema_version": 3}))
    broken = write_run(tmp_path, "leader-kill", STAMP_3)
    (broken / SUMMARY_FILE).write_text('{"schema_version": 2, "scenario": 5}')
    catalog = Catalog(tmp_path)
    assert catalog.rebuild() == 1
    assert catalog.index_run(newer) is None
    newer_problem, broken_problem = catalog.unreadable
    assert STAMP_2 in newer_problem and "schema_version 3" in newer_problem
    assert STAMP_3 in broken_problem and "not a valid run summary" in broken_problem


def test_readers_and_writers_at_once_never_see_an_error(tmp_path: Path) -> None:
    """A dashboard reads while runs are indexed: WAL and short transactions keep both going."""
    run_dirs = [
        write_run(tmp_path, "leader-kill", f"20261124T10{i:04d}.000001Z") for i in range(30)
    ]
    Catalog(tmp_path)
    problems: list[BaseException] = []

    def write() -> None:
        try:
            writer = Catalog(tmp_path)
            for run_dir in run_dirs:
                writer.index_run(run_dir)
            writer.rebuild()
        except BaseException as error:
            problems.append(error)

    def read() -> None:
        try:
            reader = Catalog(tmp_path)
            for _ in range(60):
                assert len(reader.runs()) <= len(run_dirs)
        except BaseException as error:
            problems.append(error)

    threads = [threading.Thread(target=target) for target in (write, read, read, write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert len(Catalog(tmp_path).runs()) == len(run_dirs)
