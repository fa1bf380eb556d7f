"""The generic half of the safety checks (harness/checks/): running a scenario's checks against
a target that provides some of them, on a fake target that knows nothing of trading."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.backends.base import LogAccess
from harness.checks import (
    GENERIC,
    MAX_VIOLATIONS,
    Check,
    CheckResult,
    Target,
    judged,
    not_judged,
    run_check,
    run_checks,
)
from harness.history import History
from harness.topology.plan import Plan
from harness.verdicts import Verdict

HISTORY = History()


def _count_is_even(history: History, final: int) -> CheckResult:
    del history
    violations = [] if final % 2 == 0 else [f"{final} is odd"]
    return judged("even", violations, [], {"value": final}, f"looked at {final}")


def _raises(history: History, final: int) -> CheckResult:
    raise KeyError("status")


@dataclass(frozen=True)
class CountingTarget:
    """A target whose final state is one number."""

    name: str = "counting"
    checks: Mapping[str, Check[int]] = field(
        default_factory=lambda: {"even": _count_is_even, "crashes": _raises}
    )

    def collect(self, plan: Plan, logs: LogAccess | None) -> int:
        return 4

    def save_final_state(self, run_dir: Path, final: int) -> None:
        (run_dir / "count").write_text(str(final))

    def load_final_state(self, run_dir: Path) -> int:
        return int((run_dir / "count").read_text())


TARGET = CountingTarget()


def test_a_fake_target_is_a_target() -> None:
    assert isinstance(TARGET, Target)
    assert isinstance(GENERIC, Target)


def test_a_check_judges_the_final_state_it_is_given() -> None:
    assert run_check(TARGET, "even", HISTORY, 4).verdict is Verdict.VALID
    odd = run_check(TARGET, "even", HISTORY, 3)
    assert odd.verdict is Verdict.INVALID
    assert odd.violations == ["3 is odd"]
    assert odd.counts == {"value": 3}


def test_a_check_that_raises_is_unknown_never_valid() -> None:
    crashed = run_check(TARGET, "crashes", HISTORY, 4)
    assert crashed.verdict is Verdict.UNKNOWN
    assert crashed.explanation == "the check failed: KeyError: 'status'"


def test_a_check_the_target_does_not_provide_is_not_applicable() -> None:
    results = run_checks(TARGET, ["even", "no_lost_acks"], HISTORY, 4)
    assert [r.verdict for r in results] == [Verdict.VALID, Verdict.NOT_APPLICABLE]
    assert results[1].explanation == (
        "target counting provides no check 'no_lost_acks' (its checks: even, crashes)"
    )
    (generic,) = run_checks(GENERIC, ["no_lost_acks"], HISTORY, None)
    assert generic.verdict is Verdict.NOT_APPLICABLE
    assert generic.explanation.endswith("(its checks: none)")


def test_without_a_final_state_the_targets_checks_are_unknown_the_rest_not_applicable() -> None:
    results = not_judged(TARGET, ["even", "no_lost_acks"], "BackendError: n1 did not answer")
    assert [(r.name, r.verdict) for r in results] == [
        ("even", Verdict.UNKNOWN),
        ("no_lost_acks", Verdict.NOT_APPLICABLE),
    ]
    assert results[0].explanation == "BackendError: n1 did not answer"


def test_not_applicable_takes_no_part_in_the_run_verdict() -> None:
    assert Verdict.worst([Verdict.NOT_APPLICABLE]) is Verdict.VALID
    assert Verdict.worst([Verdict.VALID, Verdict.NOT_APPLICABLE]) is Verdict.VALID
    assert Verdict.worst([Verdict.NOT_APPLICABLE, Verdict.UNKNOWN]) is Verdict.UNKNOWN
    assert Verdict.worst([Verdict.INVALID, Verdict.NOT_APPLICABLE]) is Verdict.INVALID
    assert not Verdict.NOT_APPLICABLE.failed and not Verdict.VALID.failed
    assert Verdict.UNKNOWN.failed and Verdict.INVALID.failed


def test_judged_is_invalid_over_unknown_over_valid_and_keeps_the_first_violations() -> None:
    many = [f"v{index}" for index in range(MAX_VIOLATIONS + 5)]
    result = judged("c", many, ["n2 could not be read"], {}, "looked")
    assert result.verdict is Verdict.INVALID
    assert result.violations == many[:MAX_VIOLATIONS]
    assert result.explanation == (
        f"looked; n2 could not be read; first {MAX_VIOLATIONS} of {len(many)} violations shown"
    )
    assert judged("c", [], ["n2 could not be read"], {}, "").verdict is Verdict.UNKNOWN
    assert judged("c", [], [], {}, "all there").verdict is Verdict.VALID
