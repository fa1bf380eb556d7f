"""Safety checks, the generic half: results, verdict rules, the target seam and running a
scenario's checks against the target that provides them.

    target = loaded_topology.target()            # from the topology's `target:`
    final = target.collect(plan, logs)                # while the system still runs
    results = run_checks(target, scenario.checks, history, final)

A check that raises gives `unknown` with the exception's text, never `valid`; a check the
target does not provide gives `not_applicable`, which no reader counts as a failure. The
checks themselves live with the system they judge (the reference system's in
targets/reference/checks/).
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.checks.result import MAX_VIOLATIONS, CheckResult, judged, unjudged
from harness.checks.target import (
    GENERIC,
    GENERIC_PATH,
    Check,
    FinalStateT,
    GenericTarget,
    Replayable,
    ReplayCell,
    ReplayReport,
    Target,
    load_target,
)
from harness.history import History
from harness.verdicts import Verdict

__all__ = [
    "GENERIC",
    "GENERIC_PATH",
    "MAX_VIOLATIONS",
    "Check",
    "CheckResult",
    "GenericTarget",
    "ReplayCell",
    "ReplayReport",
    "Replayable",
    "Target",
    "judged",
    "load_target",
    "not_judged",
    "run_check",
    "run_checks",
]


def run_check(
    target: Target[FinalStateT], name: str, history: History, final: FinalStateT
) -> CheckResult:
    check = target.checks.get(name)
    if check is None:
        return _not_applicable(target, name)
    try:
        return check(history, final)
    except Exception as error:  # a crashing checker proves nothing: unknown, never valid
        return unjudged(name, Verdict.UNKNOWN, f"the check failed: {type(error).__name__}: {error}")


def run_checks(
    target: Target[FinalStateT], names: Iterable[str], history: History, final: FinalStateT
) -> list[CheckResult]:
    return [run_check(target, name, history, final) for name in names]


def not_judged(
    target: Target[FinalStateT], names: Iterable[str], problem: str
) -> list[CheckResult]:
    """The results when the final state could not be collected: `unknown` with the reason
    for the target's own checks, `not_applicable` for the rest."""
    return [
        unjudged(name, Verdict.UNKNOWN, problem)
        if name in target.checks
        else _not_applicable(target, name)
        for name in names
    ]


def _not_applicable(target: Target[FinalStateT], name: str) -> CheckResult:
    provided = ", ".join(target.checks) or "none"
    return unjudged(
        name,
        Verdict.NOT_APPLICABLE,
        f"target {target.name} provides no check {name!r} (its checks: {provided})",
    )
