"""The line protocol from the load worker to its driver: one JSON object per line on stdout.

A request line carries the fields of `RequestRecord` (outcome as its string value). Two notices
are told apart by their "kind": `{"kind": "started", "start_ns": ...}` once slot 0 is fixed,
and last `{"kind": "summary", ...}`. Imported by both sides, so it must not import locust.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from harness.records import Outcome, RequestRecord

STARTED_KIND = "started"
SUMMARY_KIND = "summary"
NOTICE_KINDS = (STARTED_KIND, SUMMARY_KIND)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # one of NOTICE_KINDS
    fields: dict[str, Any]


# Reason of a record for a slot that was due but never sent (every sender was busy).
UNSENT_REASON = "not sent: every sender was waiting for a slower reply"


def record_line(record: RequestRecord) -> str:
    fields = asdict(record)
    fields["outcome"] = record.outcome.value
    return json.dumps(fields, separators=(",", ":")) + "\n"


def notice_line(kind: str, fields: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, **fields}, separators=(",", ":")) + "\n"


def parse_line(line: str | bytes) -> RequestRecord | Notice:
    """A `RequestRecord`, or a notice with its fields (without "kind").

    Raises ValueError for anything else, so a reader can count it and carry on."""
    try:
        fields = json.loads(line)
    except ValueError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    kind = fields.get("kind")
    if kind in NOTICE_KINDS:
        return Notice(kind, {key: value for key, value in fields.items() if key != "kind"})
    return _record(fields)


def _record(fields: dict[str, Any]) -> RequestRecord:
    try:
        status = fields.get("http_status")
        return RequestRecord(
            kind=_typed(fields["kind"], str),
            client_order_id=_typed(fields["client_order_id"], str),
            intended_ns=_typed(fields["intended_ns"], int),
            start_ns=_typed(fields["start_ns"], int),
            end_ns=_typed(fields["end_ns"], int),
            outcome=Outcome(fields["outcome"]),
            http_status=None if status is None else _typed(status, int),
            reason=_typed(fields.get("reason", ""), str),
            user=_typed(fields.get("user", 0), int),
            fills=_typed(fields.get("fills", 0), int),
        )
    except KeyError as error:
        raise ValueError(f"missing field {error}") from None


def _typed(value: object, kind: type[T]) -> T:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"expected {kind.__name__}, got {value!r}")
    return value
