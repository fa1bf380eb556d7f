"""A run's requests as Parquet, written from the log's columns without a Python object per
request: the strings (kind, outcome, reason, client_order_id) are made by Arrow from the
log's codes, a row group at a time, so writing six million requests holds one group's
strings, not six million.

The columns and their order are the ones a `RequestRecord` has, then a UTC twin of each
instant when the run has a clock anchor; http_status is a nullable integer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.request_log import RequestColumns, RequestLog

if TYPE_CHECKING:
    import pyarrow as pa

# A group's columns are made whole in memory while it is written (~150 bytes a request).
ROWS_PER_GROUP = 250_000
INSTANTS = ("intended_ns", "start_ns", "end_ns")
# Instants and ids are nearly sorted: deltas with zstd make a request ~11 bytes on disk
# (recording_memory's six million; plain dictionary pages with snappy made it ~44, the UTC
# twins doubling the instants).
COMPRESSION = "zstd"


def write_requests(path: Path, *, log: RequestLog, utc_shift_ns: int | None) -> None:
    import pyarrow.parquet as pq

    schema = _schema(utc_shift_ns is not None)
    with pq.ParquetWriter(
        path,
        schema,
        compression=COMPRESSION,
        use_dictionary=["kind", "outcome", "reason", "http_status", "user"],
        column_encoding={name: "DELTA_BINARY_PACKED" for name in _delta_columns(schema)},
    ) as writer:
        for begin in range(0, len(log), ROWS_PER_GROUP):
            piece = slice(begin, min(begin + ROWS_PER_GROUP, len(log)))
            writer.write_table(_table(log.columns(piece), utc_shift_ns, schema))
        if len(log) == 0:
            writer.write_table(schema.empty_table())


def _delta_columns(schema: pa.Schema) -> list[str]:
    return [name for name in schema.names if name.endswith("_ns") or name == "fills"]


def _schema(with_utc: bool) -> pa.Schema:
    import pyarrow as pa

    fields = [
        ("kind", pa.string()),
        ("client_order_id", pa.string()),
        *((name, pa.int64()) for name in INSTANTS),
        ("outcome", pa.string()),
        ("http_status", pa.int64()),
        ("reason", pa.string()),
        ("user", pa.int64()),
        ("fills", pa.int64()),
    ]
    if with_utc:
        fields += [(name.removesuffix("_ns") + "_utc_ns", pa.int64()) for name in INSTANTS]
    return pa.schema(fields)


def _table(columns: RequestColumns, utc_shift_ns: int | None, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    def strings(codes: Any, values: tuple[str, ...]) -> pa.Array:
        indices = pa.array(codes, pa.int32())
        return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string())).cast(
            pa.string()
        )

    numbers = pa.array(columns.id_numbers)
    number_text = pc.if_else(pc.equal(numbers, -1), "", pc.cast(numbers, pa.string()))
    status = columns.status_codes
    # Status codes: 0 is none, s + 1 a status s >= 0, a negative one itself.
    http_status = pa.array(status - (status > 0), mask=status == 0)
    data: dict[str, Any] = {
        "kind": strings(columns.kind_codes, columns.kinds),
        "client_order_id": pc.binary_join_element_wise(
            strings(columns.id_prefix_codes, columns.id_prefixes), number_text, ""
        ),
        "intended_ns": columns.intended_ns,
        "start_ns": columns.start_ns,
        "end_ns": columns.end_ns,
        "outcome": strings(columns.outcome_codes, columns.outcomes),
        "http_status": http_status,
        "reason": strings(columns.reason_codes, columns.reasons),
        "user": columns.user,
        "fills": columns.fills,
    }
    if utc_shift_ns is not None:
        for name in INSTANTS:
            data[name.removesuffix("_ns") + "_utc_ns"] = data[name] + utc_shift_ns
    return pa.Table.from_pydict(data, schema=schema)
