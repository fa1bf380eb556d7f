"""The abort conditions' rules, judged at given instants (no clock, no process)."""

from __future__ import annotations

import time

import pytest

from harness.abort import AbortWatch
from harness.records import Outcome, ProbeSample, RequestRecord
from harness.scenario.model import AbortConditions, ErrorRateAbort, ProbeAbort

S = 1_000_000_000


def _request(end_s: float, outcome: Outcome) -> RequestRecord:
    at = int(end_s * S)
    return RequestRecord("new", f"o{at}", at, at, at, outcome)


def _leader(at_s: float, role: str = "leader") -> ProbeSample:
    return ProbeSample(node="n1", arrival_ns=int(at_s * S), reachable=True, role=role)


def _watch(**conditions: object) -> AbortWatch:
    watch = AbortWatch(AbortConditions.model_validate(conditions), lambda _reason: None)
    watch._started_ns = 0
    watch._probe_ok_ns = 0
    return watch


def test_an_error_rate_trips_only_once_it_has_stayed_above_for_long_enough() -> None:
    watch = _watch(error_rate=ErrorRateAbort(above=0.5, for_s=2))
    for tenth in range(31):  # 3 s of answers, 80 % failed
        outcome = Outcome.ACKED if tenth % 5 == 0 else Outcome.UNKNOWN
        watch.listen(_request(tenth / 10, outcome))
        reason = watch.check(int(tenth / 10 * S))
        if tenth < 20:
            assert reason is None, f"tripped at {tenth / 10} s, before 2 s above the limit"
    # The last 1 s window holds 11 answers, 3 of them acknowledged.
    assert reason is not None and "abort.error_rate: 73% of requests failed" in reason


def test_an_error_rate_that_drops_below_the_limit_starts_over() -> None:
    watch = _watch(error_rate=ErrorRateAbort(above=0.5, for_s=1, window_s=0.5))
    answers = [
        (tenth / 10, Outcome.ERROR if tenth <= 5 or tenth >= 20 else Outcome.ACKED)
        for tenth in range(36)
    ]
    tripped_at = None
    for at, outcome in answers:
        watch.listen(_request(at, outcome))
        if watch.check(int(at * S)) is not None:
            tripped_at = at
            break
    # Above the limit from 0 to 0.7 s (then the window is half healthy), and again from
    # 2.3 s: only the second stretch lasts the full second.
    assert tripped_at == pytest.approx(3.3)


def test_the_leader_probe_trips_when_no_member_has_led_for_long_enough() -> None:
    watch = _watch(probe_failing=ProbeAbort(probe="leader", for_s=1.5))
    watch.listen(_leader(1.0))
    watch.listen(_leader(1.2, role="follower"))  # a follower answering is no leader
    assert watch.check(int(2.4 * S)) is None
    reason = watch.check(int(2.5 * S))
    assert reason is not None and "probe leader failed for 1.5 s" in reason


def test_a_run_past_its_maximum_duration_is_stopped() -> None:
    watch = _watch(max_duration_s=10)
    assert watch.check(int(9.9 * S)) is None
    assert "abort.max_duration_s" in (watch.check(10 * S) or "")


def test_a_tripped_watch_reports_once_on_its_thread() -> None:
    reasons: list[str] = []
    watch = AbortWatch(AbortConditions(max_duration_s=0.2), reasons.append)
    watch.start(time.monotonic_ns())
    deadline = time.monotonic() + 5
    while not reasons and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    watch.stop()
    assert len(reasons) == 1 and watch.reason == reasons[0]


def test_no_conditions_start_no_thread() -> None:
    watch = AbortWatch(AbortConditions(), lambda _reason: pytest.fail("tripped"))
    watch.start(0)
    assert watch._thread is None
