"""Run summaries for tests: a valid RunSummary with what a test does not care about filled in,
and a run directory holding it, written as the runner writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.store.summary import (
    Bound,
    GitFacts,
    HostFacts,
    MetricValues,
    RecordCounts,
    RunStatus,
    RunSummary,
    SloSummary,
    TargetFacts,
    write_summary,
)
from harness.verdicts import Verdict

DATA = Path(__file__).resolve().parent / "data" / "summaries"


def a_summary(**fields: Any) -> RunSummary:
    base: dict[str, Any] = {
        "scenario": "leader-kill",
        "status": RunStatus.FINISHED,
        "verdict": Verdict.VALID,
        "release": None,
        "started_at": "2026-11-24T10:00:00Z",
        "duration_s": 21.5,
        "seed": 7,
        "harness": GitFacts(commit="abc123", dirty=False),
        "target": TargetFacts(name="reference", commit="def456", dirty=True),
        "host": HostFacts(hostname="vm", cpus=2),
        "records": RecordCounts(requests=40),
        "errors": [],
        "schedule": [],
    }
    return RunSummary(**{**base, **fields})


def metrics(**values: float | None) -> MetricValues:
    return MetricValues(**values)


def an_slo(
    metric: str,
    value: float | None,
    verdict: Verdict,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    explanation: str = "",
) -> SloSummary:
    """As the builder makes one: the bound twice, as numbers and as SloResult.bound_text."""
    parts = [f">= {at_least:g}"] if at_least is not None else []
    parts += [f"<= {at_most:g}"] if at_most is not None else []
    return SloSummary(
        metric=metric,
        value=value,
        bound=Bound(min=at_least, max=at_most),
        bound_text=" and ".join(parts),
        verdict=verdict,
        explanation=explanation,
    )


def started_at(stamp: str) -> str:
    """The ISO start of a run directory named like the harness names them."""
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"


def write_run(root: Path, scenario: str, stamp: str, summary: RunSummary) -> Path:
    run_dir = root / scenario / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    write_summary(run_dir, summary)
    return run_dir


def write_v1_run(root: Path, scenario: str, stamp: str, fixture: str) -> Path:
    """A run directory holding a version-1 summary.json from tests/data/summaries/."""
    run_dir = root / scenario / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text((DATA / fixture).read_text())
    return run_dir
