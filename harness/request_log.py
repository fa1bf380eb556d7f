"""The requests of a run kept as columns of machine integers instead of one object each.

A `RequestRecord` costs ~330 bytes in memory (the object, four large ints, its id string); a
10-minute run at 10,000 requests/s has six million of them, 2 GB before anything is judged.
Here a request costs ~30 bytes: its instants as one 8-byte instant and two small offsets from
it, its strings as codes into tables of the distinct values (an id as a code for what precedes
its trailing number, and the number), each column in the narrowest integer type its values
have needed so far. Every field is kept exactly: iterating gives back records equal to the
ones appended.

Read it as a sequence of records (made as they are read, so a pass over the log holds one at a
time), or by column (`intended_ns`, `columns`) where numbers are all that is needed.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from harness.records import Outcome, RequestRecord

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Signed typecodes, narrowest first; a column moves to the next when a value does not fit.
_WIDER = {"b": "h", "h": "i", "i": "q"}
_OUTCOMES = tuple(Outcome)
OUTCOME_OF_CODE = _OUTCOMES  # a RequestNumbers outcome code's Outcome
_OUTCOME_CODES = {outcome: code for code, outcome in enumerate(_OUTCOMES)}
# What precedes an id's trailing number, and the number when written without leading zeros
# (so that prefix + str(number) is the id again); ids without one keep number -1.
_TRAILING_NUMBER = re.compile(r"(.*?)(0|[1-9][0-9]{0,17})")
_NO_NUMBER = -1
_PIECE = 65_536  # requests per slice when iterating


class IntColumn:
    """Integers in an `array`, widened (b -> h -> i -> q) when one does not fit."""

    __slots__ = ("values",)

    def __init__(self, typecode: str = "b", values: Iterable[int] = ()) -> None:
        self.values = array(typecode)
        self.extend(values)

    def append(self, value: int) -> None:
        try:
            self.values.append(value)
        except OverflowError:
            self._widen(value)
            self.values.append(value)

    def extend(self, values: Iterable[int]) -> None:
        for value in values:
            self.append(value)

    def _widen(self, value: int) -> None:
        typecode: str = self.values.typecode
        while True:
            if typecode not in _WIDER:
                raise OverflowError(f"{value} does not fit in 64 bits")
            typecode = _WIDER[typecode]
            try:
                array(typecode, [value])
            except OverflowError:
                continue
            self.values = array(typecode, self.values)
            return

    def numpy(self) -> npt.NDArray[np.int64]:
        import numpy as np

        return np.frombuffer(self.values, dtype=self.values.typecode).astype(np.int64)


class Interned:
    """Distinct strings, each once, and the code of each."""

    __slots__ = ("codes", "values")

    def __init__(self) -> None:
        self.values: list[str] = []
        self.codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.values)
            self.values.append(value)
        return code


def split_id(client_order_id: str) -> tuple[str, int]:
    """`("o-3-", 17)` for "o-3-17"; `(id, -1)` for an id without a trailing number."""
    match = _TRAILING_NUMBER.fullmatch(client_order_id)
    if match is None:
        return client_order_id, _NO_NUMBER
    return match.group(1), int(match.group(2))


def join_id(prefix: str, number: int) -> str:
    return prefix if number == _NO_NUMBER else prefix + str(number)


def _status_code(status: int | None) -> int:
    # None is 0; a status s >= 0 is s + 1; a negative one (no HTTP status is) stays itself.
    if status is None:
        return 0
    return status + 1 if status >= 0 else status


def _status_of(code: int) -> int | None:
    if code == 0:
        return None
    return code - 1 if code > 0 else code


class RequestLog(Sequence[RequestRecord]):
    """Append-only (safe to append from one thread while another reads a length's worth)."""

    def __init__(self, records: Iterable[RequestRecord] = ()) -> None:
        self._intended = IntColumn("q")
        self._start_offset = IntColumn("i")  # start_ns - intended_ns
        self._end_offset = IntColumn("i")  # end_ns - intended_ns
        self._kind = IntColumn()
        self._outcome = IntColumn()
        self._status = IntColumn("h")
        self._reason = IntColumn()
        self._user = IntColumn("h")
        self._fills = IntColumn()
        self._id_prefix = IntColumn()
        self._id_number = IntColumn("i")
        self._kinds = Interned()
        self._reasons = Interned()
        self._prefixes = Interned()
        self._in_intended_order = True
        self.extend(records)

    def append(self, record: RequestRecord) -> None:
        intended = record.intended_ns
        if self._intended.values and intended < self._intended.values[-1]:
            self._in_intended_order = False
        prefix, number = split_id(record.client_order_id)
        # The instant goes last: a reader takes the length from it, so every other column
        # already holds the request when it is counted.
        self._start_offset.append(record.start_ns - intended)
        self._end_offset.append(record.end_ns - intended)
        self._kind.append(self._kinds.code(record.kind))
        self._outcome.append(_OUTCOME_CODES[record.outcome])
        self._status.append(_status_code(record.http_status))
        self._reason.append(self._reasons.code(record.reason))
        self._user.append(record.user)
        self._fills.append(record.fills)
        self._id_prefix.append(self._prefixes.code(prefix))
        self._id_number.append(number)
        self._intended.append(intended)

    def extend(self, records: Iterable[RequestRecord]) -> None:
        for record in records:
            self.append(record)

    @classmethod
    def joined(cls, *parts: Iterable[RequestRecord]) -> RequestLog:
        log = cls()
        for part in parts:
            log.extend(part)
        return log

    def __len__(self) -> int:
        return len(self._intended.values)

    @overload
    def __getitem__(self, index: int) -> RequestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[RequestRecord]: ...

    def __getitem__(self, index: int | slice) -> RequestRecord | list[RequestRecord]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("request index out of range")
        return self._record(index)

    def _record(self, i: int) -> RequestRecord:
        intended = self._intended.values[i]
        return RequestRecord(
            self._kinds.values[self._kind.values[i]],
            join_id(self._prefixes.values[self._id_prefix.values[i]], self._id_number.values[i]),
            intended,
            intended + self._start_offset.values[i],
            intended + self._end_offset.values[i],
            _OUTCOMES[self._outcome.values[i]],
            _status_of(self._status.values[i]),
            self._reasons.values[self._reason.values[i]],
            self._user.values[i],
            self._fills.values[i],
        )

    def __iter__(self) -> Iterator[RequestRecord]:
        kinds, reasons, prefixes = self._kinds.values, self._reasons.values, self._prefixes.values
        count = len(self)
        columns = (
            self._intended.values,
            self._start_offset.values,
            self._end_offset.values,
            self._kind.values,
            self._outcome.values,
            self._status.values,
            self._reason.values,
            self._user.values,
            self._fills.values,
            self._id_prefix.values,
            self._id_number.values,
        )
        # In pieces: a slice of every column is a copy, and a whole log's copy would double it.
        for begin in range(0, count, _PIECE):
            end_of_piece = min(begin + _PIECE, count)
            rows = zip(*(column[begin:end_of_piece] for column in columns), strict=True)
            for (
                intended,
                start,
                end,
                kind,
                outcome,
                status,
                reason,
                user,
                fills,
                prefix,
                number,
            ) in rows:
                yield RequestRecord(
                    kinds[kind],
                    join_id(prefixes[prefix], number),
                    intended,
                    intended + start,
                    intended + end,
                    _OUTCOMES[outcome],
                    _status_of(status),
                    reasons[reason],
                    user,
                    fills,
                )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RequestLog | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"RequestLog({len(self)} requests)"

    def in_intended_order(self) -> RequestLog:
        """This log, ordered by intended send time in place (stable: equal instants keep their
        order of arrival), and returned. In place because a copy would double the log, and
        a run's log is almost in order anyway (each worker's batches are); call it once the
        appending is over, as judging a run does: a reader iterating meanwhile would see rows
        of both orders."""
        if self._in_intended_order:
            return self
        import numpy as np

        order = np.argsort(np.frombuffer(self._intended.values, dtype=np.int64), kind="stable")
        for name in _COLUMN_NAMES:  # in place, a column at a time: one column in flight
            column: IntColumn = getattr(self, name)
            values = np.frombuffer(column.values, dtype=column.values.typecode)
            values[:] = values[order]
            del values  # while it lives, the array cannot grow
        self._in_intended_order = True
        return self

    def numbers(self) -> RequestNumbers:
        """What judging a run needs, as numpy arrays (copies, in the log's order): instants
        as int64, the rest in the narrowest type they fit."""
        import numpy as np

        def copy(column: IntColumn) -> Any:
            return np.frombuffer(column.values, dtype=column.values.typecode).copy()

        return RequestNumbers(
            intended_ns=copy(self._intended).astype(np.int64, copy=False),
            latency_ns=copy(self._end_offset),
            outcome_codes=copy(self._outcome),
            reason_codes=copy(self._reason),
            reasons=tuple(self._reasons.values),
        )

    def intended_ns(self) -> Sequence[int]:
        return self._intended.values

    def columns(self, piece: slice) -> RequestColumns:
        """The rows of `piece` as numpy int64 arrays, for writing them (copies: ask for a
        piece at a time, a whole log's would be 120 bytes a request)."""
        import numpy as np

        def of(column: IntColumn) -> Any:
            values = column.values[piece]
            return np.frombuffer(values, dtype=values.typecode).astype(np.int64)

        intended = of(self._intended)
        return RequestColumns(
            intended_ns=intended,
            start_ns=intended + of(self._start_offset),
            end_ns=intended + of(self._end_offset),
            kind_codes=of(self._kind),
            kinds=tuple(self._kinds.values),
            outcome_codes=of(self._outcome),
            outcomes=tuple(outcome.value for outcome in _OUTCOMES),
            status_codes=of(self._status),
            reason_codes=of(self._reason),
            reasons=tuple(self._reasons.values),
            user=of(self._user),
            fills=of(self._fills),
            id_prefix_codes=of(self._id_prefix),
            id_prefixes=tuple(self._prefixes.values),
            id_numbers=of(self._id_number),
        )

    def nbytes(self) -> int:
        """Bytes held by the columns (not the tables of distinct strings)."""
        return sum(
            len(column.values) * column.values.itemsize
            for column in (getattr(self, name) for name in _COLUMN_NAMES)
        )


_COLUMN_NAMES = (
    "_intended",
    "_start_offset",
    "_end_offset",
    "_kind",
    "_outcome",
    "_status",
    "_reason",
    "_user",
    "_fills",
    "_id_prefix",
    "_id_number",
)


@dataclass(frozen=True)
class RequestNumbers:
    """The numbers of a log that judging uses; `latency_ns` is end_ns - intended_ns."""

    intended_ns: npt.NDArray[np.int64]
    latency_ns: npt.NDArray[np.signedinteger[Any]]
    outcome_codes: npt.NDArray[np.signedinteger[Any]]
    reason_codes: npt.NDArray[np.signedinteger[Any]]
    reasons: tuple[str, ...]

    def outcome_is(self, outcome: Outcome) -> npt.NDArray[np.bool_]:
        matches: npt.NDArray[np.bool_] = self.outcome_codes == _OUTCOME_CODES[outcome]
        return matches

    def available(self) -> npt.NDArray[np.bool_]:
        return self.outcome_is(Outcome.ACKED) | self.outcome_is(Outcome.REJECTED)

    def end_ns(self) -> npt.NDArray[np.int64]:
        return self.intended_ns + self.latency_ns


@dataclass(frozen=True)
class RequestColumns:
    """A log's columns as numpy arrays: codes index the tuples of distinct values; a status
    code is 0 for none, s + 1 for a status s >= 0 (see `_status_code`); an id number of -1
    means the id is its prefix alone."""

    intended_ns: npt.NDArray[np.int64]
    start_ns: npt.NDArray[np.int64]
    end_ns: npt.NDArray[np.int64]
    kind_codes: npt.NDArray[np.int64]
    kinds: tuple[str, ...]
    outcome_codes: npt.NDArray[np.int64]
    outcomes: tuple[str, ...]
    status_codes: npt.NDArray[np.int64]
    reason_codes: npt.NDArray[np.int64]
    reasons: tuple[str, ...]
    user: npt.NDArray[np.int64]
    fills: npt.NDArray[np.int64]
    id_prefix_codes: npt.NDArray[np.int64]
    id_prefixes: tuple[str, ...]
    id_numbers: npt.NDArray[np.int64]


def as_log(requests: Sequence[RequestRecord]) -> RequestLog:
    return requests if isinstance(requests, RequestLog) else RequestLog(requests)
