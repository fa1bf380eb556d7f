from __future__ import annotations

import random

import pytest

from harness.metrics import (
    BRACKET_MIDDLE,
    MID_REQUEST,
    NS_PER_MS,
    ROLE_AGE,
    Tolerance,
    downtime_ms,
    find_failover,
    outages,
    percentile,
    recovered_at,
)
from harness.records import FaultEvent, Outcome, ProbeSample, RequestRecord

MS = NS_PER_MS


def request(
    intended_ms: float, outcome: Outcome = Outcome.ACKED, latency_ms: float = 2
) -> RequestRecord:
    intended = int(intended_ms * MS)
    return RequestRecord(
        kind="new",
        client_order_id=f"c{intended}",
        intended_ns=intended,
        start_ns=intended,
        end_ns=intended + int(latency_ms * MS),
        outcome=outcome,
    )


def flow(start_ms: int, end_ms: int, step_ms: int = 10, **kwargs: object) -> list[RequestRecord]:
    return [request(t, **kwargs) for t in range(start_ms, end_ms, step_ms)]  # type: ignore[arg-type]


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([], 0.5) is None


def test_an_outage_lasts_from_first_failure_to_next_success() -> None:
    history = flow(0, 1000) + flow(1000, 1300, outcome=Outcome.UNKNOWN) + flow(1300, 2000)
    assert outages(history) == [(1000 * MS, 1300 * MS)]
    assert downtime_ms(history) == pytest.approx(300)


def test_rejections_are_not_downtime_and_separate_outages_add_up() -> None:
    history = (
        flow(0, 100, outcome=Outcome.REJECTED)
        + flow(100, 200, outcome=Outcome.ERROR)
        + flow(200, 500)
        + flow(500, 550, outcome=Outcome.UNKNOWN)
        + flow(550, 600)
    )
    assert downtime_ms(history) == pytest.approx(150)


def test_outage_still_open_at_the_end_counts_until_the_last_answer() -> None:
    history = flow(0, 100) + flow(100, 200, outcome=Outcome.ERROR, latency_ms=5)
    assert downtime_ms(history) == pytest.approx(95)  # 100 ms .. last answer at 195 ms


def sample(node: str, at_ms: float, role: str, term: int) -> ProbeSample:
    return ProbeSample(node, int(at_ms * MS), True, role, term, node if role == "leader" else None)


def test_failover_is_first_sample_of_another_leader_in_a_newer_term() -> None:
    kill = FaultEvent(0, 0, "kill", "applied", 1000 * MS)
    samples = [
        sample("n1", 990, "leader", 3),
        sample("n2", 1100, "candidate", 4),
        sample("n1", 1200, "leader", 3),  # a stale report from the old leader does not count
        sample("n3", 1421, "leader", 4),
    ]
    requests = flow(0, 1000) + flow(1000, 1430, outcome=Outcome.ERROR) + flow(1430, 2000)
    failover = find_failover(kill, "n1", 3, samples, requests)
    assert failover.new_leader == "n3"
    assert failover.failover_ms == pytest.approx(421)
    assert failover.first_commit_ms == pytest.approx(432)  # acked at 1430 + 2 ms latency


def test_a_slow_status_answer_places_the_election_mid_request() -> None:
    kill = FaultEvent(0, 0, "kill", "applied", 1000 * MS)
    slow = ProbeSample("n2", 1212 * MS, True, role="leader", term=4, leader="n2", sent_ns=1200 * MS)
    failover = find_failover(kill, "n1", 3, [sample("n1", 990, "leader", 3), slow], [])
    assert failover.failover_ms == pytest.approx(206)  # not 212: the answer took 12 ms


def answer(at_ms: float, took_ms: float, age_ms: float) -> ProbeSample:
    """n2 answering as leader of term 4, saying it has led for `age_ms`."""
    return ProbeSample(
        "n2", int(at_ms * MS), True, "leader", 4, "n2", sent_ns=int((at_ms - took_ms) * MS),
        role_age_ms=age_ms,
    )  # fmt: skip


def test_a_reported_leadership_age_places_the_election_by_the_quickest_answer() -> None:
    kill = FaultEvent(0, 0, "kill", "applied", 1000 * MS)
    # Elected at 1180 ms. The first answer took 30 ms (mid-request 1185: 5 ms late); a later,
    # quick one (1 ms) says it has led 20.5 ms at 1200.5: 1180 exactly.
    samples = [sample("n1", 990, "leader", 3), answer(1200, 30, 20), answer(1201, 1, 20.5)]
    failover = find_failover(kill, "n1", 3, samples, [])
    assert failover.failover_ms == pytest.approx(180)
    # Both estimates are kept, and the run says which one it reported.
    assert failover.election is not None and failover.election.estimator == ROLE_AGE
    assert failover.election.mid_request_ns == 1185 * MS
    assert failover.election.role_age_ns == 1180 * MS
    # The probe's bracket: after the kill, before the first answer as leader arrived.
    assert (failover.election.earliest_ns, failover.election.latest_ns) == (1000 * MS, 1200 * MS)


def test_a_reported_age_that_contradicts_the_probe_is_not_used() -> None:
    kill = FaultEvent(0, 0, "kill", "applied", 1000 * MS)
    # "Leader for 500 ms" would put the election before the fault: keep the mid-request figure.
    samples = [sample("n1", 990, "leader", 3), answer(1200, 10, 500)]
    failover = find_failover(kill, "n1", 3, samples, [])
    assert failover.failover_ms == pytest.approx(195)
    assert failover.election is not None and failover.election.estimator == MID_REQUEST
    assert failover.election.role_age_ns is None
    # Nor one that says it led while the probe saw it as a candidate (sent at 1150 ms).
    candidate = ProbeSample("n2", 1160 * MS, True, "candidate", 4, None, sent_ns=1150 * MS)
    samples = [sample("n1", 990, "leader", 3), candidate, answer(1200, 10, 80)]
    # Its own answers bracket the election (1150-1200 ms): placed at the middle.
    assert find_failover(kill, "n1", 3, samples, []).failover_ms == pytest.approx(175)
    # Answers of another term or long after the first are not used either.
    later = answer(1500, 1, 320)
    stale = ProbeSample("n2", 1201 * MS, True, "leader", 5, "n2", sent_ns=1200 * MS, role_age_ms=1)
    failover = find_failover(kill, "n1", 3, [answer(1200, 10, 500), later, stale], [])
    assert failover.failover_ms == pytest.approx(195)


def test_no_failover_when_no_new_leader_appears() -> None:
    kill = FaultEvent(0, 0, "kill", "applied", 1000 * MS)
    failover = find_failover(kill, "n1", 3, [sample("n2", 1200, "candidate", 4)], [])
    assert failover.failover_ms is None and failover.first_commit_ms is None


def test_recovery_waits_for_a_whole_healthy_window() -> None:
    tolerance = Tolerance(window_ns=200 * MS, success_rate_min=0.99, latency_p99_ms_max=50)
    history = (
        flow(0, 1000)
        + flow(1000, 1300, outcome=Outcome.UNKNOWN)
        + flow(1300, 1500, latency_ms=120)  # answers again, but too slowly
        + flow(1500, 3000)
    )
    assert recovered_at(history, 1000 * MS, tolerance) == 1500 * MS


def test_recovery_is_none_when_the_run_ends_unhealthy() -> None:
    tolerance = Tolerance(window_ns=200 * MS, success_rate_min=0.99, latency_p99_ms_max=50)
    history = flow(0, 1000) + flow(1000, 2000, outcome=Outcome.ERROR)
    assert recovered_at(history, 1000 * MS, tolerance) is None


def _recovered_at_by_definition(
    requests: list[RequestRecord], since_ns: int, tolerance: Tolerance
) -> int | None:
    """recovered_at as its docstring defines it, one whole pass per window: the reference the
    sliding window must agree with."""
    ordered = sorted(requests, key=lambda r: r.intended_ns)
    last = ordered[-1].intended_ns
    for position, first in enumerate(ordered):
        if first.intended_ns < since_ns:
            continue
        end = first.intended_ns + tolerance.window_ns
        if end > last:
            return None
        window = [r for r in ordered[position:] if r.intended_ns < end]
        good = [r.latency_ns / MS for r in window if r.available]
        if (
            len(window) >= tolerance.min_requests
            and len(good) / len(window) >= tolerance.success_rate_min
            and good
            and percentile(good, 0.99) <= tolerance.latency_p99_ms_max  # type: ignore[operator]
        ):
            return first.intended_ns
    return None


@pytest.mark.parametrize("seed", range(40))
def test_the_sliding_recovery_window_agrees_with_the_definition(seed: int) -> None:
    randomness = random.Random(seed)
    outcomes = [Outcome.ACKED] * 20 + [Outcome.REJECTED, Outcome.UNKNOWN, Outcome.ERROR]
    history = []
    t = 0
    for _ in range(randomness.randrange(1, 1500)):
        t += randomness.choice([0, 1, 3, 10])  # ties in intended time included
        # Rare slow answers, so that windows fall either side of a p99 limit; repeats included.
        latency = 200 if randomness.random() < 0.02 else randomness.choice([1, 5, 5, 30, 60])
        history.append(request(t, outcome=randomness.choice(outcomes), latency_ms=latency))
    tolerance = Tolerance(
        window_ns=randomness.choice([5, 50, 200, 500]) * MS,
        success_rate_min=randomness.choice([0.5, 0.8, 0.9]),
        latency_p99_ms_max=randomness.choice([10, 50, 100]),
        min_requests=randomness.choice([1, 5]),
    )
    since = randomness.randrange(0, t + 1) * MS
    assert recovered_at(history, since, tolerance) == _recovered_at_by_definition(
        history, since, tolerance
    )


def test_latency_is_measured_from_the_intended_send_time() -> None:
    late = RequestRecord(
        "new", "c", intended_ns=0, start_ns=300 * MS, end_ns=302 * MS, outcome=Outcome.ACKED
    )
    assert late.latency_ns == 302 * MS


def test_an_election_bracketed_by_the_members_own_answers_is_placed_at_its_middle() -> None:
    """A candidate answer that took 22 ms (sent at 1000 ms, arrived at 1022), then a quick
    first answer as leader (1022.5-1023): the switch happened somewhere from 1000 to 1023, and
    the first leading request's middle (1022.75) would be late by up to the whole stall."""
    kill = FaultEvent(0, 0, "kill", "applied", 900 * MS)
    stalled = ProbeSample("n2", 1022 * MS, True, "candidate", 4, None, sent_ns=1000 * MS)
    leading = ProbeSample("n2", 1023 * MS, True, "leader", 4, "n2", sent_ns=int(1022.5 * MS))
    samples = [sample("n1", 890, "leader", 3), stalled, leading]
    failover = find_failover(kill, "n1", 3, samples, [])
    assert failover.election is not None and failover.election.estimator == BRACKET_MIDDLE
    assert failover.elected_ns == int(1011.5 * MS)
    assert failover.error_bound_ms == pytest.approx(11.5)  # half the bracket, not its width
    assert failover.election.mid_request_ns == int(1022.75 * MS)  # still kept


def test_a_follower_naming_the_new_leader_closes_the_bracket_sooner() -> None:
    """The new leader's own status stalls 20 ms as it switches (sent 1000, leader at 1022);
    the surviving follower already named it, in its term, in an answer that arrived at 1004:
    a member hears of a leader only from the leader's own messages after it won, so the
    election lies in 1000-1004 ms, not 1000-1022."""
    kill = FaultEvent(0, 0, "kill", "applied", 900 * MS)
    candidate = ProbeSample("n2", 999 * MS, True, "candidate", 4, None, sent_ns=998 * MS)
    stalled = ProbeSample("n2", 1022 * MS, True, "leader", 4, "n2", sent_ns=1000 * MS)
    follower = ProbeSample("n3", 1004 * MS, True, "follower", 4, "n2", sent_ns=1003 * MS)
    other_term = ProbeSample("n3", 1001 * MS, True, "follower", 3, "n2", sent_ns=1000 * MS)
    samples = [sample("n1", 890, "leader", 3), candidate, other_term, follower, stalled]
    failover = find_failover(kill, "n1", 3, samples, [])
    election = failover.election
    assert election is not None and election.estimator == BRACKET_MIDDLE
    assert (election.earliest_ns, election.latest_ns) == (998 * MS, 1004 * MS)
    assert failover.elected_ns == 1001 * MS
    assert failover.error_bound_ms == pytest.approx(3)
    assert election.mid_request_ns == int(1003.5 * MS)  # the follower's request, not the stall
    # Without the follower's answer the stall sets the bracket (998-1022 ms).
    alone = find_failover(kill, "n1", 3, [sample("n1", 890, "leader", 3), candidate, stalled], [])
    assert alone.elected_ns == 1010 * MS
