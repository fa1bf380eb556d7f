"""The suite runs under `<results root>/suites/<suite>/<stamp>/suite.json`, as the dashboard
shows them. A suite.json that cannot be read is reported and left out, never fatal: one bad
file must not keep the rest of the dashboard from being built."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUITES_DIR = "suites"
SUITE_FILE = "suite.json"
SUITE_REPORT = "suite-report.html"


@dataclass(frozen=True)
class SuiteRunLine:
    """One scenario run of a suite run."""

    scenario: str
    repeat: int
    run_dir: Path  # absolute
    verdict: str
    failures: list[str]


@dataclass(frozen=True)
class SuiteRun:
    directory: Path  # absolute
    suite: str
    release: str | None
    started_at: str
    finished_at: str | None
    verdict: str
    availability: float | None
    projected_annual_downtime_s: float | None
    annual_downtime_budget_s: float | None
    runs: list[SuiteRunLine] = field(default_factory=list)

    @property
    def report(self) -> Path:
        """The page to link: the suite report, or suite.json until there is one."""
        report = self.directory / SUITE_REPORT
        return report if report.exists() else self.directory / SUITE_FILE

    @property
    def within_budget(self) -> bool | None:
        if self.projected_annual_downtime_s is None or self.annual_downtime_budget_s is None:
            return None
        return self.projected_annual_downtime_s <= self.annual_downtime_budget_s


def read_suite_runs(results_root: Path) -> tuple[list[SuiteRun], list[str]]:
    """Every suite run, newest first, and one line per suite.json that was left out."""
    suite_runs, problems = [], []
    for file in sorted((results_root / SUITES_DIR).glob(f"*/*/{SUITE_FILE}")):
        if file.parent.is_symlink():  # `latest` points at a run listed under its own stamp
            continue
        try:
            suite_runs.append(suite_run_from_json(file.parent, json.loads(file.read_text())))
        except (OSError, ValueError, TypeError, AttributeError) as error:
            problems.append(f"{file}: left out ({error})")
    suite_runs.sort(key=lambda run: (run.started_at, str(run.directory)), reverse=True)
    return suite_runs, problems


def suite_run_from_json(directory: Path, document: Mapping[str, Any]) -> SuiteRun:
    if not isinstance(document, Mapping):
        raise ValueError("suite.json is not an object")
    results_root = directory.parent.parent.parent
    return SuiteRun(
        directory=directory.resolve(),
        suite=str(document.get("suite") or directory.parent.name),
        release=_text(document.get("release")),
        started_at=str(document.get("started_at") or directory.name),
        finished_at=_text(document.get("finished_at")),
        verdict=str(document.get("verdict") or "unknown"),
        availability=_number(document.get("availability")),
        projected_annual_downtime_s=_number(document.get("projected_annual_downtime_s")),
        annual_downtime_budget_s=_number(document.get("annual_downtime_budget_s")),
        runs=[_line(results_root, line) for line in document.get("runs") or []],
    )


def _line(results_root: Path, line: Mapping[str, Any]) -> SuiteRunLine:
    run_dir = Path(str(line.get("run_dir") or ""))
    return SuiteRunLine(
        scenario=str(line.get("scenario") or run_dir.parent.name),
        repeat=int(line.get("repeat") or 0),
        run_dir=(results_root / run_dir).resolve(),
        verdict=str(line.get("verdict") or "unknown"),
        failures=[str(failure) for failure in line.get("failures") or []],
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
