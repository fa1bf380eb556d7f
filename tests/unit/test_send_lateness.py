"""The summary's warning when the load fell behind its schedule (harness/send_lateness.py)."""

from __future__ import annotations

from harness.load.wire import UNSENT_REASON
from harness.metrics import NS_PER_MS
from harness.records import Outcome, RequestRecord
from harness.send_lateness import SEND_LATENESS_WARN_MS, lateness_warnings, send_lateness_ms


def sent(intended_ms: int, late_ms: float, reason: str = "") -> RequestRecord:
    intended = intended_ms * NS_PER_MS
    start = intended + int(late_ms * NS_PER_MS)
    outcome = Outcome.ERROR if reason else Outcome.ACKED
    return RequestRecord("new", f"c{intended_ms}", intended, start, start + NS_PER_MS, outcome,
                         reason=reason)  # fmt: skip


def test_a_load_on_schedule_is_not_warned_about() -> None:
    requests = [sent(t, 1.0) for t in range(1000)]
    requests.append(sent(1000, 300.0))  # one late send is under the p99
    assert lateness_warnings(requests) == []
    assert lateness_warnings([]) == []


def test_a_load_behind_schedule_is_warned_about_with_its_lag() -> None:
    requests = [sent(t, 1.0) for t in range(900)]
    requests += [sent(t, 2 * SEND_LATENESS_WARN_MS + t) for t in range(900, 1000)]
    (warning,) = lateness_warnings(requests)
    assert "fell behind its schedule" in warning
    assert "at worst 1,039 ms" in warning and "never sent" not in warning


def test_slots_never_sent_are_warned_about_even_when_the_rest_was_on_time() -> None:
    requests = [sent(t, 1.0) for t in range(1000)] + [sent(1000, 0.0, UNSENT_REASON)]
    (warning,) = lateness_warnings(requests)
    assert "1 of 1,001 slots never sent" in warning


def test_lateness_is_per_sent_request_and_leaves_out_the_unsent_slots() -> None:
    # The failover bench reports these figures too; an unsent slot has no real start.
    requests = [sent(0, 2.5), sent(1, 0.0, UNSENT_REASON), sent(2, 40.0)]
    assert send_lateness_ms(requests) == [2.5, 40.0]
