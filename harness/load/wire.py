"""The line protocol from the load master to its driver: one JSON object per line on stdout.

Records travel in batches, `{"kind": "records", "rows": [[...], ...]}`, each row the fields of
`RequestRecord` in `RECORD_FIELDS` order (outcome as its string value): one line and one
`json.loads` per batch instead of per request. Two notices are told apart by their "kind":
`{"kind": "started", "start_ns": ...}` once slot 0 is fixed, and last `{"kind": "summary", ...}`.
The workers send the same rows to the master over Locust's own messages (`worker.py`).
Imported by both sides, so it must not import locust.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harness.records import OUTCOME_OF_VALUE, RequestBatch, RequestRecord

STARTED_KIND = "started"
SUMMARY_KIND = "summary"
RECORDS_KIND = "records"
NOTICE_KINDS = (STARTED_KIND, SUMMARY_KIND)
RECORD_FIELDS = (
    "kind",
    "client_order_id",
    "intended_ns",
    "start_ns",
    "end_ns",
    "outcome",
    "http_status",
    "reason",
    "user",
    "fills",
)
OUTCOMES = OUTCOME_OF_VALUE
# What each field of a row must be, checked on arrival (None: may also be null).
ROW_TYPES: tuple[tuple[type, bool], ...] = (
    (str, False),
    (str, False),
    (int, False),
    (int, False),
    (int, False),
    (str, False),
    (int, True),
    (str, False),
    (int, False),
    (int, False),
)

# Reason of a record for a slot that was due but never sent (every sender was busy).
UNSENT_REASON = "not sent: every sender was waiting for a slower reply"

Row = list[Any]  # or tuple, as built by the worker


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # one of NOTICE_KINDS
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Batch:
    requests: RequestBatch  # the good rows, checked
    malformed: list[str]  # why each bad row was refused; the good rows still count


def record_row(record: RequestRecord) -> Row:
    return [
        record.kind,
        record.client_order_id,
        record.intended_ns,
        record.start_ns,
        record.end_ns,
        record.outcome.value,
        record.http_status,
        record.reason,
        record.user,
        record.fills,
    ]


def records_line(rows: list[Row]) -> str:
    return json.dumps({"kind": RECORDS_KIND, "rows": rows}, separators=(",", ":")) + "\n"


def notice_line(kind: str, fields: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, **fields}, separators=(",", ":")) + "\n"


def parse_line(line: str | bytes) -> Batch | Notice:
    """A batch of checked request rows, or a notice with its fields (without "kind").

    Raises ValueError for a line that is neither, so a reader can count it and carry on."""
    try:
        fields = json.loads(line)
    except ValueError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    kind = fields.get("kind")
    if kind in NOTICE_KINDS:
        return Notice(kind, {key: value for key, value in fields.items() if key != "kind"})
    if kind != RECORDS_KIND or not isinstance(fields.get("rows"), list):
        raise ValueError(f"neither a notice nor a batch of records (kind {kind!r})")
    rows: list[Row] = fields["rows"]
    malformed = []
    for row in rows:
        if not _good(row):
            malformed.append(_what_is_wrong(row))
    if malformed:
        rows = [row for row in rows if _good(row)]
    return Batch(RequestBatch(rows), malformed)


# The exact types a good row has, field by field (http_status may be null): one tuple
# comparison per record on the hot path; the per-field explanation only for a bad one.
ROW_SIGNATURES = {
    tuple(type(None) if nullable and null else kind for kind, nullable in ROW_TYPES)
    for null in (False, True)
}


def _good(row: object) -> bool:
    return (
        isinstance(row, list)
        and tuple(map(type, row)) in ROW_SIGNATURES
        and row[5] in OUTCOMES  # a row of the right types has a string here
    )


def parse_row(row: object) -> RequestRecord:
    """One row as a record (the reader takes whole batches: `parse_line`)."""
    if not isinstance(row, list) or not _good(row):
        raise ValueError(_what_is_wrong(row))
    return next(iter(RequestBatch([row])))


def _what_is_wrong(row: object) -> str:
    if not isinstance(row, list) or len(row) != len(RECORD_FIELDS):
        return f"a record row has {len(RECORD_FIELDS)} fields: {row!r:.120}"
    for value, (kind, nullable), name in zip(row, ROW_TYPES, RECORD_FIELDS, strict=True):
        if type(value) is not kind and not (value is None and nullable):  # bool is no int
            return f"{name}: expected {kind.__name__}, got {value!r:.80}"
    if row[5] not in OUTCOMES:
        return f"outcome: not one of {sorted(OUTCOMES)}: {row[5]!r:.40}"
    return f"a record row of unexpected types: {row!r:.120}"
