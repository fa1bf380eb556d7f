"""The requests of a run kept as columns of machine integers instead of one object each.

A `RequestRecord` costs ~330 bytes in memory (the object, four large ints, its id string); a
10-minute run at 10,000 requests/s has six million of them, 2 GB before anything is judged.
Here a request costs ~30 bytes: its instants as one 8-byte instant and two small offsets from
it, its strings as codes into tables of the distinct values (an id as a code for what precedes
its trailing number, and the number), each column in the narrowest integer type its values
have needed so far. Every field is kept exactly: iterating gives back records equal to the
ones appended.

Read it as a sequence of records (made as they are read, so a pass over the log holds one at a
time), or as numpy arrays (`numbers` for judging, `columns` a piece at a time for writing).
"""

from __future__ import annotations

import bisect
import re
import threading
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, overload

from harness.records import Outcome, RequestBatch, RequestRecord

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Signed typecodes, narrowest first; a column moves to the next when a value does not fit.
_WIDER = {"b": "h", "h": "i", "i": "q"}
_OUTCOMES = tuple(Outcome)
OUTCOME_OF_CODE = _OUTCOMES  # a RequestNumbers outcome code's Outcome
_OUTCOME_CODES = {outcome: code for code, outcome in enumerate(_OUTCOMES)}
_OUTCOME_CODE_OF_VALUE = {outcome.value: code for code, outcome in enumerate(_OUTCOMES)}
# What precedes an id's trailing number, and the number when written without leading zeros
# (so that prefix + str(number) is the id again); ids without one keep number -1.
_TRAILING_NUMBER = re.compile(r"(.*?)(0|[1-9][0-9]{0,17})")
_NO_NUMBER = -1
_DIGITS = "0123456789"
_PIECE = 65_536  # requests per slice when iterating
# How far back in the log a request arriving out of intended order is put in its place:
# two workers' 50 ms batches at 10,000/s interleave over ~500 requests; inserting moves the
# requests after it, so a request seconds late is appended and the log sorted when judged.
REORDER_REACH = 8_192
_CHUNK = 1_000_000  # requests per piece of whole-log arithmetic


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

    def insert(self, position: int, value: int) -> None:
        try:
            self.values.insert(position, value)
        except OverflowError:
            self._widen(value)
            self.values.insert(position, value)

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
    # The usual id first, without a regex: a number of 1-18 digits, no leading zero.
    head = client_order_id.rstrip(_DIGITS)
    digits = len(client_order_id) - len(head)
    if 0 < digits <= 18 and (digits == 1 or client_order_id[len(head)] != "0"):
        return head, int(client_order_id[len(head) :])
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


class _Records(Sequence[RequestRecord]):
    """Indexing of a sequence of records, in terms of the record at a valid index."""

    @overload
    def __getitem__(self, index: int) -> RequestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[RequestRecord]: ...

    def __getitem__(self, index: int | slice) -> RequestRecord | list[RequestRecord]:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("request index out of range")
        return self._at(index)

    def _at(self, index: int) -> RequestRecord:
        raise NotImplementedError


class RequestLog(_Records):
    """Requests in intended order, appended by one thread; readers take each piece of the
    columns under the log's lock, so a record is never read half inserted."""

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
        # Appends may insert: a reader takes its pieces of every column under this lock.
        self._lock = threading.Lock()
        self._version = 0  # moves when a request is put anywhere but at the end
        self._columns: tuple[IntColumn, ...] = tuple(getattr(self, name) for name in _COLUMN_NAMES)
        self._arrays = [column.values for column in self._columns]  # renewed when one widens
        self._numbers: weakref.ref[RequestNumbers] | None = None
        self.extend(records)

    def append(self, record: RequestRecord) -> None:
        """Adds a request at its place in intended order when that is among the last
        `REORDER_REACH` (the workers' batches interleave by tens of milliseconds), else at
        the end, and the log is ordered when judged (`in_intended_order`)."""
        row = (
            record.kind,
            record.client_order_id,
            record.intended_ns,
            record.start_ns,
            record.end_ns,
            record.outcome,
            record.http_status,
            record.reason,
            record.user,
            record.fills,
        )
        with self._lock:
            self._add((row,), _OUTCOMES.index)  # by identity: an enum's hash is Python code

    def extend_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Adds the checked rows of a `RequestBatch` (the load's), each as `append` would."""
        with self._lock:  # once a batch: a reader waits for the batch, not for each request
            self._add(rows, _OUTCOME_CODE_OF_VALUE.__getitem__)

    def record(self, requests: RequestRecord | RequestBatch) -> None:
        """What a load hands on (`LoadRequest.on_record`): one request or a batch."""
        if isinstance(requests, RequestBatch):
            self.extend_rows(requests.rows)
        else:
            self.append(requests)

    def _add(self, rows: Iterable[Sequence[Any]], outcome_code: Callable[[Any], int]) -> None:
        """Puts each row (RequestRecord's fields in order) in its place; the caller holds the
        lock. One loop, spelt out: at 10,000 requests/s this is most of what the harness
        spends reading the load (a call less a request is ~5 % of it)."""
        kinds, reasons, prefixes = self._kinds, self._reasons, self._prefixes
        kind_codes, reason_codes, prefix_codes = kinds.codes, reasons.codes, prefixes.codes
        for (
            kind,
            client_order_id,
            intended,
            start,
            end,
            outcome,
            status,
            reason,
            user,
            fills,
        ) in rows:
            prefix, number = split_id(client_order_id)
            kind_code = kind_codes.get(kind)
            reason_code = reason_codes.get(reason)
            prefix_code = prefix_codes.get(prefix)
            values = (  # in the order of _COLUMN_NAMES
                intended,
                start - intended,
                end - intended,
                kinds.code(kind) if kind_code is None else kind_code,
                outcome_code(outcome),
                _status_code(status),
                reasons.code(reason) if reason_code is None else reason_code,
                user,
                fills,
                prefixes.code(prefix) if prefix_code is None else prefix_code,
                number,
            )
            arrays = self._arrays
            count = len(arrays[0])
            if not count or intended >= arrays[0][-1]:
                position = count
            else:
                place = self._place_of(intended)
                if place is None:
                    self._in_intended_order = False
                position = count if place is None else place
                self._version += 1
            try:
                self._insert(arrays, position, values)
            except OverflowError:  # a column must widen: undo, and go through the columns
                for values_of_column in arrays:
                    if len(values_of_column) > count:
                        del values_of_column[position]
                for column, value in zip(self._columns, values, strict=True):
                    column.insert(position, value)
                self._arrays = [column.values for column in self._columns]

    @staticmethod
    def _insert(arrays: list[array[int]], position: int, values: tuple[int, ...]) -> None:
        # Spelt out, not a loop: the arrays themselves, at ~70 ns a column, are most of what
        # recording a request costs (the harness reads 10,000 a second at the goal's rate).
        a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = arrays
        v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10 = values
        a0.insert(position, v0)
        a1.insert(position, v1)
        a2.insert(position, v2)
        a3.insert(position, v3)
        a4.insert(position, v4)
        a5.insert(position, v5)
        a6.insert(position, v6)
        a7.insert(position, v7)
        a8.insert(position, v8)
        a9.insert(position, v9)
        a10.insert(position, v10)

    def _place_of(self, intended: int) -> int | None:
        """Where `intended` goes (after equal instants), if among the last REORDER_REACH."""
        instants = self._intended.values
        reach = max(0, len(instants) - REORDER_REACH)
        place = bisect.bisect_right(instants, intended, reach)
        if place > reach or reach == 0 or instants[reach - 1] <= intended:
            return place
        return None

    def extend(self, records: Iterable[RequestRecord]) -> None:
        for record in records:
            self.append(record)

    def __len__(self) -> int:
        return len(self._intended.values)

    def _at(self, i: int) -> RequestRecord:
        with self._lock:
            row = [column.values[i] for column in self._columns]
        return self._decode(*row)

    def __iter__(self) -> Iterator[RequestRecord]:
        count = len(self)
        # In pieces: a slice of every column is a copy, and a whole log's copy would double it.
        for begin in range(0, count, _PIECE):
            end_of_piece = min(begin + _PIECE, count)
            with self._lock:
                pieces = [column.values[begin:end_of_piece] for column in self._columns]
            for row in zip(*pieces, strict=True):
                yield self._decode(*row)

    def _decode(
        self,
        intended: int,
        start: int,
        end: int,
        kind: int,
        outcome: int,
        status: int,
        reason: int,
        user: int,
        fills: int,
        prefix: int,
        number: int,
    ) -> RequestRecord:
        """The record of one row of the columns, in the order of _COLUMN_NAMES."""
        return RequestRecord(
            self._kinds.values[kind],
            join_id(self._prefixes.values[prefix], number),
            intended,
            intended + start,
            intended + end,
            _OUTCOMES[outcome],
            _status_of(status),
            self._reasons.values[reason],
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

        with self._lock:
            order = np.argsort(np.frombuffer(self._intended.values, dtype=np.int64), kind="stable")
            for column in self._columns:  # in place, a column at a time: one column in flight
                values = np.frombuffer(column.values, dtype=column.values.typecode)
                values[:] = values[order]
                del values  # while it lives, the array cannot grow
            self._in_intended_order = True
            self._version += 1
        return self

    def numbers(self) -> RequestNumbers:
        """What judging a run needs, as numpy arrays made when first asked for (copies of the
        log's requests, in its order). While one is held (judging holds one), asking again
        gives the same one, so nested figures share its arrays; once let go, it is freed."""
        with self._lock:
            held = self._numbers() if self._numbers is not None else None
            if held is not None and held.count == len(self) and held.version == self._version:
                return held
            numbers = RequestNumbers(self, self._version)
            self._numbers = weakref.ref(numbers)
            return numbers

    def _copy(self, column: IntColumn, count: int) -> Any:
        import numpy as np

        with self._lock:
            return np.frombuffer(column.values, dtype=column.values.typecode)[:count].copy()

    def columns(self, piece: slice) -> RequestColumns:
        """The rows of `piece` as numpy int64 arrays, for writing them (copies: ask for a
        piece at a time, a whole log's would be 120 bytes a request)."""
        import numpy as np

        def of(column: IntColumn) -> Any:
            with self._lock:
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
        return sum(len(column.values) * column.values.itemsize for column in self._columns)


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


class RequestNumbers:
    """A log's numbers for judging, each array made on first use and kept by this object:
    a caller holds only the arrays it asked for (a few bytes a request each, where the
    records would be hundreds). `latency_ns` is end_ns - intended_ns, `lateness_ns` start_ns
    - intended_ns; codes index `reasons` and `OUTCOME_OF_CODE`."""

    def __init__(self, log: RequestLog, version: int) -> None:
        self._log = log
        self.count = len(log)
        self.version = version
        self.reasons = tuple(log._reasons.values)

    @cached_property
    def intended_ns(self) -> npt.NDArray[np.int64]:
        import numpy as np

        intended: npt.NDArray[np.int64] = self._log._copy(self._log._intended, self.count)
        return intended.astype(np.int64, copy=False)

    @cached_property
    def latency_ns(self) -> npt.NDArray[np.signedinteger[Any]]:
        latency: npt.NDArray[np.signedinteger[Any]] = self._log._copy(
            self._log._end_offset, self.count
        )
        return latency

    @cached_property
    def lateness_ns(self) -> npt.NDArray[np.signedinteger[Any]]:
        lateness: npt.NDArray[np.signedinteger[Any]] = self._log._copy(
            self._log._start_offset, self.count
        )
        return lateness

    @cached_property
    def outcome_codes(self) -> npt.NDArray[np.signedinteger[Any]]:
        codes: npt.NDArray[np.signedinteger[Any]] = self._log._copy(self._log._outcome, self.count)
        return codes

    @cached_property
    def reason_codes(self) -> npt.NDArray[np.signedinteger[Any]]:
        codes: npt.NDArray[np.signedinteger[Any]] = self._log._copy(self._log._reason, self.count)
        return codes

    def outcome_is(self, outcome: Outcome) -> npt.NDArray[np.bool_]:
        matches: npt.NDArray[np.bool_] = self.outcome_codes == _OUTCOME_CODES[outcome]
        return matches

    def reason_is(self, reason: str) -> npt.NDArray[np.bool_]:
        import numpy as np

        code = self._log._reasons.codes.get(reason)
        if code is None:
            return np.zeros(self.count, dtype=np.bool_)
        matches: npt.NDArray[np.bool_] = self.reason_codes == code
        return matches

    def available(self) -> npt.NDArray[np.bool_]:
        return self.outcome_is(Outcome.ACKED) | self.outcome_is(Outcome.REJECTED)

    # Whole-log sums of int64s are 8 bytes a request each: these go a million at a time.

    def max_end_ns(self) -> int | None:
        if not self.count:
            return None
        return max(int((self.intended_ns[c] + self.latency_ns[c]).max()) for c in self._chunks())

    def ends_before(self, limit_ns: int) -> npt.NDArray[np.bool_]:
        import numpy as np

        before = np.empty(self.count, dtype=np.bool_)
        for chunk in self._chunks():
            before[chunk] = self.intended_ns[chunk] + self.latency_ns[chunk] < limit_ns
        return before

    def _chunks(self) -> Iterator[slice]:
        for begin in range(0, self.count, _CHUNK):
            yield slice(begin, min(begin + _CHUNK, self.count))


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
    """The requests as a log: themselves when they are one, else a copy."""
    return requests if isinstance(requests, RequestLog) else RequestLog(requests)


class JoinedRequests(_Records):
    """Several sequences of requests read as one, without copying them: the requests the
    safety checks judge are the warm-up's, the run's, and on a shared topology every
    earlier run's too (a copy would hold a long run's log twice)."""

    def __init__(self, *parts: Sequence[RequestRecord]) -> None:
        self._parts = tuple(part for part in parts if len(part))

    def __len__(self) -> int:
        return sum(len(part) for part in self._parts)

    def _at(self, index: int) -> RequestRecord:
        for part in self._parts:
            if index < len(part):
                return part[index]
            index -= len(part)
        raise IndexError("request index out of range")

    def __iter__(self) -> Iterator[RequestRecord]:
        for part in self._parts:
            yield from part

    def __repr__(self) -> str:
        return f"JoinedRequests({', '.join(repr(part) for part in self._parts)})"
