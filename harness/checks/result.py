"""What a safety check concludes, and the one rule every check decides its verdict by.

These are the harness's half of the check seam: a target's checks (harness/checks/target.py)
return a `CheckResult`, usually through `judged`, and the harness stores, shows and counts it
without knowing what the check looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.verdicts import Verdict

# How many concrete violations a result carries (the counts say how many there were).
MAX_VIOLATIONS = 10


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    counts: dict[str, int]
    violations: list[str]  # the first few, each concrete: order ids, seqs, nodes
    explanation: str


def judged(
    name: str,
    violations: list[str],
    undecided: list[str],
    counts: dict[str, int],
    summary: str,
) -> CheckResult:
    """Invalid when anything was violated, else unknown when something could not be decided,
    else valid; the explanation says why, with the summary first."""
    if violations:
        verdict = Verdict.INVALID
    elif undecided:
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.VALID
    parts = [summary, *undecided]
    if len(violations) > MAX_VIOLATIONS:
        parts.append(f"first {MAX_VIOLATIONS} of {len(violations)} violations shown")
    return CheckResult(
        name, verdict, counts, violations[:MAX_VIOLATIONS], "; ".join(p for p in parts if p)
    )


def unjudged(name: str, verdict: Verdict, explanation: str) -> CheckResult:
    """A check that could not look at anything: it did not run, or does not apply."""
    return CheckResult(name, verdict, {}, [], explanation)
