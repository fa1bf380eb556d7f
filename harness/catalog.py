"""The results catalog: one SQLite table indexing every finished run under the results root.

The run directories are the truth; the catalog is derived from their summary.json files (read
through `load_summary`, so summaries of every version are indexed alike) and can be rebuilt
from them at any time (`hftchaos runs --rebuild`). A schema change therefore never migrates:
an old catalog is dropped and rebuilt.

Writers hold the database only for one short transaction, and the journal is in WAL mode, so a
dashboard reading the catalog while a run is being indexed sees either the old or the new row,
never a half-written one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SummaryError
from harness.store.summary import (
    SUMMARY_FILE,
    RunStatus,
    RunSummary,
    SloSummary,
    counts_as_pass,
    load_summary,
)

CATALOG_FILE = "catalog.sqlite"
SCHEMA_VERSION = 1
# Directories of the results root that hold output other than scenario runs.
NOT_SCENARIOS = frozenset({"suites", "dashboard", "screenshots", "compare"})
# How long a writer waits for another writer before giving up (seconds).
LOCK_TIMEOUT_S = 30.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
    path TEXT PRIMARY KEY,
    scenario TEXT NOT NULL,
    release TEXT,
    harness_commit TEXT,
    target_version TEXT,
    started_at TEXT NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT NOT NULL,
    duration_s REAL,
    metrics TEXT NOT NULL,
    checks TEXT NOT NULL,
    failures TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS runs_by_scenario ON runs (scenario, started_at)",
    "CREATE INDEX IF NOT EXISTS runs_by_release ON runs (release, started_at)",
)
_COLUMNS = (
    "path, scenario, release, harness_commit, target_version, started_at, status, verdict, "
    "duration_s, metrics, checks, failures"
)


@dataclass(frozen=True)
class RunEntry:
    path: Path  # absolute run directory
    scenario: str
    release: str | None
    harness_commit: str | None
    target_version: str | None  # target commit or version if known
    started_at: str  # ISO-8601 UTC
    status: str  # finished | aborted | interrupted

    @property
    def passed(self) -> bool:
        return counts_as_pass(self.status, self.verdict)

    verdict: str  # valid | invalid | unknown
    duration_s: float | None
    metrics: dict[str, float | None]
    checks: dict[str, str]  # check name -> verdict
    failures: list[str]  # broken SLOs / checks, one line each


class Catalog:
    def __init__(self, results_root: Path) -> None:
        self.results_root = results_root.resolve()
        self.file = self.results_root / CATALOG_FILE
        self.results_root.mkdir(parents=True, exist_ok=True)
        # Why each run directory the last rebuild left out was left out, one line each.
        self.unreadable: list[str] = []
        self._prepare()

    def index_run(self, run_dir: Path) -> RunEntry | None:
        """Add or replace the run's row; None when the run has no (readable) summary.json."""
        entry = read_run(run_dir)
        if entry is not None:
            with self._transaction() as connection:
                self._upsert(connection, entry)
        return entry

    def rebuild(self) -> int:
        """Forget every row and index each run directory again; returns how many were indexed.
        Run directories whose summary cannot be read are left out, each said in `unreadable`."""
        entries: list[RunEntry] = []
        self.unreadable = []
        for run_dir in self._run_dirs():
            try:
                entries.append(read_run_or_fail(run_dir))
            except SummaryError as error:
                self.unreadable.append(str(error))
        with self._transaction() as connection:
            connection.execute("DELETE FROM runs")
            for entry in entries:
                self._upsert(connection, entry)
        return len(entries)

    def runs(
        self,
        scenario: str | None = None,
        release: str | None = None,
        verdict: str | None = None,
        limit: int | None = None,
    ) -> list[RunEntry]:
        """Newest first."""
        conditions, parameters = [], []
        for column, value in (("scenario", scenario), ("release", release), ("verdict", verdict)):
            if value is not None:
                conditions.append(f"{column} = ?")
                parameters.append(value)
        query = f"SELECT {_COLUMNS} FROM runs"
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        # The directory name is a microsecond stamp: it orders runs started in the same second.
        query += " ORDER BY started_at DESC, path DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._connect() as connection:
            rows = connection.execute(query, parameters).fetchall()
        return [self._entry(row) for row in rows]

    def scenarios(self) -> list[str]:
        return self._distinct("scenario")

    def releases(self) -> list[str]:
        return self._distinct("release")

    def _distinct(self, column: str) -> list[str]:
        query = f"SELECT DISTINCT {column} FROM runs WHERE {column} IS NOT NULL ORDER BY {column}"
        with self._connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def _run_dirs(self) -> Iterator[Path]:
        for summary in sorted(self.results_root.glob(f"*/*/{SUMMARY_FILE}")):
            run_dir = summary.parent
            # `latest` links point at runs that are indexed under their own name.
            if run_dir.is_symlink() or run_dir.parent.is_symlink():
                continue
            if run_dir.parent.name in NOT_SCENARIOS:
                continue
            yield run_dir

    def _prepare(self) -> None:
        """Create the table, or drop a catalog of another schema version and rebuild it."""
        with self._connect() as connection:
            # The common case, read without the write lock: readers never queue behind a run.
            if connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
        with self._transaction() as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return
            stale = version != 0
            connection.execute("DROP TABLE IF EXISTS runs")
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if stale:
            self.rebuild()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.file, timeout=LOCK_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            # IMMEDIATE takes the write lock up front: two writers queue instead of deadlocking.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _stored_path(self, path: Path) -> str:
        """Relative to the results root when inside it, so a moved root keeps its catalog."""
        try:
            return str(path.relative_to(self.results_root))
        except ValueError:
            return str(path)

    def _upsert(self, connection: sqlite3.Connection, entry: RunEntry) -> None:
        connection.execute(
            f"INSERT OR REPLACE INTO runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._stored_path(entry.path),
                entry.scenario,
                entry.release,
                entry.harness_commit,
                entry.target_version,
                entry.started_at,
                entry.status,
                entry.verdict,
                entry.duration_s,
                json.dumps(entry.metrics),
                json.dumps(entry.checks),
                json.dumps(entry.failures),
            ),
        )

    def _entry(self, row: tuple[Any, ...]) -> RunEntry:
        (path, scenario, release, harness, target, started, status, verdict, duration) = row[:9]
        metrics, checks, failures = (json.loads(text) for text in row[9:])
        return RunEntry(
            path=self.results_root / path,  # an absolute stored path stays absolute
            scenario=scenario,
            release=release,
            harness_commit=harness,
            target_version=target,
            started_at=started,
            status=status,
            verdict=verdict,
            duration_s=duration,
            metrics=metrics,
            checks=checks,
            failures=failures,
        )


def open_catalog(results_root: Path | None = None) -> Catalog:
    """The catalog of this results root (default: $HFTCHAOS_RESULTS or ./results)."""
    from harness import paths

    return Catalog(results_root if results_root is not None else paths.results_root())


def read_run(run_dir: Path) -> RunEntry | None:
    """The catalog entry of one run directory, from its summary.json (of any version)."""
    try:
        return read_run_or_fail(run_dir)
    except SummaryError:
        return None


def read_run_or_fail(run_dir: Path) -> RunEntry:
    run_dir = run_dir.resolve()
    return entry_from_summary(run_dir, load_summary(run_dir))


def entry_from_summary(run_dir: Path, summary: RunSummary) -> RunEntry:
    return RunEntry(
        path=run_dir,
        scenario=summary.scenario,
        release=summary.release,
        harness_commit=summary.harness.commit,
        target_version=summary.target.version or summary.target.commit,
        started_at=summary.started_at,
        status=summary.status.value,
        verdict=summary.verdict.value,
        duration_s=summary.duration_s,
        metrics=summary.metrics.by_name() if summary.metrics is not None else {},
        checks={check.name: check.verdict.value for check in summary.checks},
        failures=failures_of(summary),
    )


def failures_of(summary: RunSummary) -> list[str]:
    """Everything that broke, one line each: SLOs, safety checks, steady-state windows."""
    failures = []
    if summary.status is not RunStatus.FINISHED:
        reason = summary.stopped_by or (summary.errors[-1] if summary.errors else None)
        failures.append(f"run {summary.status.value}: {reason or 'no reason recorded'}")
    failures += [_slo_failure(slo) for slo in summary.slos if slo.verdict.failed]
    for check in summary.checks:
        if check.verdict.failed:  # not_applicable: the target has no such check
            explanation = check.explanation or "no explanation"
            failures.append(f"{check.name} {check.verdict.value}: {explanation}")
    for window in summary.steady_state:
        if window.verdict.failed:
            problems = "; ".join(window.problems) or "no detail"
            failures.append(f"steady state {window.window} {window.verdict.value}: {problems}")
    return failures


def _slo_failure(slo: SloSummary) -> str:
    metric, value, bound = slo.metric, slo.value, slo.bound
    if value is None:
        return f"{metric} not measured (limit {slo.bound_text})"
    if bound.min is not None and value < bound.min:
        return f"{metric} {_format(value)} < {bound.min:g}"
    if bound.max is not None and value > bound.max:
        return f"{metric} {_format(value)} > {bound.max:g}"
    return f"{metric} {_format(value)} {slo.verdict.value} (limit {slo.bound_text})"


def _format(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.4g}"
