"""A user's own Locust task judged by the request events it fired (the last decides)."""

from __future__ import annotations

from types import SimpleNamespace

from harness.load.task_outcome import judge_events
from harness.records import Outcome


def event(status: int | None, exception: Exception | None = None) -> dict[str, object]:
    response = None if status is None else SimpleNamespace(status_code=status)
    return {"request_type": "POST", "name": "/put", "response": response, "exception": exception}


def test_success_failure_with_an_answer_and_without_one() -> None:
    assert judge_events([event(200)]).outcome is Outcome.ACKED
    rejected = judge_events([event(409, ValueError("conflict"))])
    assert (rejected.outcome, rejected.status) == (Outcome.REJECTED, 409)
    assert "conflict" in rejected.reason
    # Locust reports a refused connection as status 0: no answer came.
    refused = judge_events([event(0, ConnectionRefusedError("refused"))])
    assert (refused.outcome, refused.status) == (Outcome.UNKNOWN, None)
    assert judge_events([event(None, TimeoutError())]).outcome is Outcome.UNKNOWN


def test_the_last_event_decides_and_none_at_all_is_unknown() -> None:
    assert judge_events([event(500, RuntimeError()), event(200)]).outcome is Outcome.ACKED
    assert judge_events([event(200), event(503, RuntimeError())]).outcome is Outcome.REJECTED
    nothing = judge_events([])
    assert nothing.outcome is Outcome.UNKNOWN and "no request event" in nothing.reason
