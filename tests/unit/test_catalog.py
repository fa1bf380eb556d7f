from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.catalog import CATALOG_FILE, SCHEMA_VERSION, Catalog, failures_of, open_catalog


def write_run(
    root: Path,
    scenario: str,
    stamp: str,
    release: str | None = None,
    verdict: str = "valid",
    **extra: Any,
) -> Path:
    """A run directory with a synthetic summary.json, named like the harness names them."""
    run_dir = root / scenario / stamp
    run_dir.mkdir(parents=True)
    summary = {
        "scenario": scenario,
        "status": "finished",
        "release": release,
        "started_at": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:"
        f"{stamp[13:15]}Z",
        "duration_s": 21.5,
        "harness": {"commit": "abc123", "dirty": False},
        "target": {"name": "reference", "commit": "def456", "dirty": True},
        "metrics": {"failover_ms": 400.0, "error_rate": 0.01, "recovery_ms": None},
        "checks": [{"name": "no_lost_acks", "verdict": "valid", "explanation": "fine"}],
        "verdict": verdict,
        **extra,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


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
    assert entry.metrics == {"failover_ms": 400.0, "error_rate": 0.01, "recovery_ms": None}
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
    run_dir = write_run(tmp_path, "leader-kill", STAMP_1, verdict="unknown")
    catalog = Catalog(tmp_path)
    catalog.index_run(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "verdict": "invalid"}))
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
    (run_dir / "summary.json").unlink()
    assert catalog.rebuild() == 0
    assert catalog.runs() == []


def test_filters_order_and_limit(tmp_path: Path) -> None:
    write_run(tmp_path, "leader-kill", STAMP_1, release="v1", verdict="valid")
    write_run(tmp_path, "leader-kill", STAMP_2, release="v2", verdict="invalid")
    write_run(tmp_path, "follower-kill", STAMP_3, release="v2", verdict="valid")
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
    summary = {
        "status": "finished",
        "slos": [
            {"metric": "failover_ms", "value": 950.06, "limit": "<= 800", "verdict": "invalid"},
            {"metric": "recovery_ms", "value": 100.0, "limit": "<= 2500", "verdict": "valid"},
            {"metric": "error_rate", "value": None, "limit": "<= 0.05", "verdict": "unknown"},
            {"metric": "throughput", "value": 12.0, "limit": ">= 50", "verdict": "invalid"},
        ],
        "checks": [
            {"name": "no_lost_acks", "verdict": "invalid", "explanation": "3 acked orders lost"},
            {"name": "kafka_gap_free", "verdict": "valid", "explanation": "fine"},
        ],
        "steady_state": [
            {"window": "after recovery", "verdict": "invalid", "problems": ["p99 101 > 100"]},
            {"window": "before faults", "verdict": "valid", "problems": []},
        ],
    }
    assert failures_of(summary) == [
        "failover_ms 950.1 > 800",
        "error_rate not measured (limit <= 0.05)",
        "throughput 12.0 < 50",
        "no_lost_acks invalid: 3 acked orders lost",
        "steady state after recovery invalid: p99 101 > 100",
    ]


def test_an_aborted_run_says_why() -> None:
    summary = {"status": "aborted", "errors": ["BackendError: kafka did not start"]}
    assert failures_of(summary) == ["run aborted: BackendError: kafka did not start"]


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
