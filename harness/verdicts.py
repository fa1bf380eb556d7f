"""Verdicts: SLOs judged against measured figures, three-valued like Jepsen's checkers.

A figure that could not be measured is `unknown`, never a pass. The run's verdict is the worst
of its parts: invalid over unknown over valid. A safety check the system under test does not
provide is `not_applicable` (harness/checks/target.py): it takes no part in the run's verdict,
and no reader (catalog, suite, compare, report) counts it as a failure.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.scenario.limit import Limit


class Verdict(enum.Enum):
    VALID = "valid"
    UNKNOWN = "unknown"
    INVALID = "invalid"
    NOT_APPLICABLE = "not_applicable"

    @staticmethod
    def worst(verdicts: Iterable[Verdict]) -> Verdict:
        """The run's verdict from its parts; a part that does not apply is left out."""
        ranked = [Verdict.VALID, Verdict.UNKNOWN, Verdict.INVALID]
        judged = [verdict for verdict in verdicts if verdict is not Verdict.NOT_APPLICABLE]
        return max(judged, key=ranked.index, default=Verdict.VALID)

    @property
    def failed(self) -> bool:
        """Invalid or unknown: what the catalog and the suite list against a run."""
        return self in (Verdict.INVALID, Verdict.UNKNOWN)


@dataclass(frozen=True)
class SloResult:
    metric: str
    value: float | None
    limit: Limit
    verdict: Verdict
    explanation: str

    @property
    def bound_text(self) -> str:
        parts = []
        if self.limit.min is not None:
            parts.append(f">= {self.limit.min:g}")
        if self.limit.max is not None:
            parts.append(f"<= {self.limit.max:g}")
        return " and ".join(parts)


def judge_slo(metric: str, value: float | None, limit: Limit) -> SloResult:
    if value is None:
        return SloResult(metric, None, limit, Verdict.UNKNOWN, "not measured in this run")
    too_low = limit.min is not None and value < limit.min
    too_high = limit.max is not None and value > limit.max
    if too_low or too_high:
        bound = limit.min if too_low else limit.max
        return SloResult(
            metric, value, limit, Verdict.INVALID, f"{value:.3f} breaks the limit {bound:g}"
        )
    return SloResult(metric, value, limit, Verdict.VALID, "within the limit")


def judge_slos(
    slos: Mapping[str, Limit],
    values: Mapping[str, float | None],
    downtime_budget_ms: float | None,
) -> list[SloResult]:
    results = [judge_slo(metric, values.get(metric), limit) for metric, limit in slos.items()]
    if downtime_budget_ms is not None:
        result = judge_slo("downtime_ms", values.get("downtime_ms"), Limit(max=downtime_budget_ms))
        results.append(
            SloResult(
                "downtime_budget_ms", result.value, result.limit, result.verdict, result.explanation
            )
        )
    return results
