"""What one scenario run of a suite came to: verdict, the figures the suite needs, and what
broke, one line each (the text of a JUnit failure)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.store.summary import RunStatus, RunSummary, counts_as_pass


class CaseState(enum.Enum):
    """A JUnit test case: passed, failed (the system broke a promise), error (the harness did)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


@dataclass(frozen=True)
class RunOutcome:
    scenario: str
    repeat: int  # 1-based
    fault_class: str
    run_dir: Path | None
    verdict: str  # valid | invalid | unknown
    duration_s: float
    load_duration_s: float
    failures: list[str] = field(default_factory=list)
    error: str | None = None  # a harness error: the run did not finish or was not judged
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    downtime_budget_ms: float | None = None
    status: str = "finished"  # the run's: finished | aborted | interrupted (only finished passes)

    @property
    def case_name(self) -> str:
        return f"{self.scenario}[{self.repeat}]"

    @property
    def state(self) -> CaseState:
        if self.error is not None:
            return CaseState.ERROR
        return CaseState.PASSED if counts_as_pass(self.status, self.verdict) else CaseState.FAILED

    def metric(self, name: str) -> float | None:
        value = self.metrics.get(name)
        return float(value) if value is not None else None

    @property
    def downtime_ms(self) -> float | None:
        return self.metric("downtime_ms")


def _number(value: float | None) -> str:
    return f"{value:.6g}" if value is not None else "not measured"


def failures_from_summary(summary: RunSummary) -> list[str]:
    """Every SLO, steady-state window and safety check that is not valid, and every harness
    error, as one line a person can read in a CI failure message."""
    lines: list[str] = []
    for slo in summary.slos:
        if slo.verdict.failed:
            lines.append(
                f"SLO {slo.metric} = {_number(slo.value)} (limit {slo.bound_text}): "
                f"{slo.verdict.value}: {slo.explanation}"
            )
    for window in summary.steady_state:
        if window.verdict.failed:
            problems = "; ".join(window.problems) or "not decided"
            lines.append(f"steady state {window.window}: {window.verdict.value}: {problems}")
    for check in summary.checks:
        if check.verdict.failed:  # not_applicable: the target has no such check
            evidence = "; ".join(check.violations[:3]) or check.explanation
            lines.append(f"check {check.name}: {check.verdict.value}: {evidence}")
    lines.extend(f"harness error: {error}" for error in summary.errors)
    if summary.status is not RunStatus.FINISHED:
        why = f": {summary.stopped_by}" if summary.stopped_by else ""
        lines.append(f"the run was {summary.status.value} before it could be judged{why}")
    return lines
