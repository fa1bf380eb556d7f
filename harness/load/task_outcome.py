"""What one task of a user's own Locust class amounted to, from the Locust request events it
fired (harness/load/user_class.py; pure, so it is tested without importing locust)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.records import Outcome


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    outcome: Outcome
    status: int | None
    reason: str


def judge_events(fired: list[dict[str, Any]]) -> TaskOutcome:
    """The outcome of one task from the Locust request events it fired (the last decides)."""
    if not fired:
        return TaskOutcome(Outcome.UNKNOWN, None, "the task fired no request event")
    last = fired[-1]
    status = _status_of(last.get("response"))
    exception = last.get("exception")
    if exception is None:
        return TaskOutcome(Outcome.ACKED, status, "")
    reason = f"{type(exception).__name__}: {exception}"[:200]
    if status is not None and status > 0:
        return TaskOutcome(Outcome.REJECTED, status, reason)
    return TaskOutcome(Outcome.UNKNOWN, None, reason)


def _status_of(response: object) -> int | None:
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None
