"""Safety checks: pure functions that judge a run's recorded history and the final state of
the system (collected by `collect.collect_final_state` while the topology still runs).

    final = collect_final_state(plan, settle_s=1.0)
    results = run_checks(scenario.checks, history, final)
    verdict = Verdict.worst(result.verdict for result in results)

A check that raises gives `unknown` with the exception's text, never `valid`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from harness.checks.deterministic_replay import deterministic_replay
from harness.checks.kafka_gap_free import kafka_gap_free
from harness.checks.model import CheckResult, FinalState, NodeFinal
from harness.checks.monotonic_timestamps import monotonic_timestamps
from harness.checks.no_double_fills import no_double_fills
from harness.checks.no_lost_acks import no_lost_acks
from harness.checks.replicas_identical import replicas_identical
from harness.history import History
from harness.verdicts import Verdict

Check = Callable[[History, FinalState], CheckResult]

# Keyed by the names a scenario lists (harness.scenario.model.CHECKS).
CHECKS: dict[str, Check] = {
    "no_lost_acks": no_lost_acks,
    "no_double_fills": no_double_fills,
    "replicas_identical": replicas_identical,
    "kafka_gap_free": kafka_gap_free,
    "deterministic_replay": deterministic_replay,
    "monotonic_timestamps": monotonic_timestamps,
}

__all__ = ["CHECKS", "CheckResult", "FinalState", "NodeFinal", "run_check", "run_checks"]


def run_check(name: str, history: History, final: FinalState) -> CheckResult:
    check = CHECKS.get(name)
    if check is None:
        known = ", ".join(CHECKS)
        return CheckResult(name, Verdict.UNKNOWN, {}, [], f"no check named {name!r}; {known}")
    try:
        return check(history, final)
    except Exception as error:  # a crashing checker proves nothing: unknown, never valid
        return CheckResult(
            name, Verdict.UNKNOWN, {}, [], f"the check failed: {type(error).__name__}: {error}"
        )


def run_checks(names: Iterable[str], history: History, final: FinalState) -> list[CheckResult]:
    return [run_check(name, history, final) for name in names]
