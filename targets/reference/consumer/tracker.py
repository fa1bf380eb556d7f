"""What the downstream consumer makes of the execution stream: pure, no Kafka, no threads.

Delivery is at least once and a new engine leader resumes publishing from its replicated
`published_seq`, so the stream may repeat or reorder executions. Each `seq` counts once;
whatever is missing below the highest seq seen is a gap until it arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class MalformedExecutionError(ValueError):
    """A message that is not an execution record; the message names the field."""


class Observation(StrEnum):
    APPLIED = "applied"
    OUT_OF_ORDER = "out_of_order"  # applied, but below a seq already seen
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Execution:
    seq: int
    symbol: str
    quantity: int
    buy_account: str
    sell_account: str


@dataclass(frozen=True)
class TrackerSnapshot:
    last_seq: int
    received: int
    applied: int
    duplicates: int
    gaps: list[tuple[int, int]]
    out_of_order: int
    positions: dict[str, dict[str, int]]


def parse_execution(record: object) -> Execution:
    if not isinstance(record, Mapping):
        raise MalformedExecutionError("an execution must be a JSON object")
    return Execution(
        seq=_positive_int(record, "seq"),
        symbol=_text(record, "symbol"),
        quantity=_positive_int(record, "quantity"),
        buy_account=_text(record, "buy_account"),
        sell_account=_text(record, "sell_account"),
    )


class ExecutionTracker:
    """Not thread-safe: one owner feeds it, readers take snapshots under the owner's lock."""

    def __init__(self) -> None:
        self._received = 0
        self._duplicates = 0
        self._out_of_order = 0
        # Every seq in 1..contiguous_through has been applied; later ones are kept one by one
        # only while a gap below them is open, so memory follows the gaps, not the stream.
        self._contiguous_through = 0
        self._applied_above: set[int] = set()
        self._highest_seq = 0
        self._positions: dict[str, dict[str, int]] = {}

    def observe(self, execution: Execution) -> Observation:
        self._received += 1
        seq = execution.seq
        if seq <= self._contiguous_through or seq in self._applied_above:
            self._duplicates += 1
            return Observation.DUPLICATE
        self._mark_applied(seq)
        self._add_position(execution.buy_account, execution.symbol, execution.quantity)
        self._add_position(execution.sell_account, execution.symbol, -execution.quantity)
        if seq < self._highest_seq:
            self._out_of_order += 1
            return Observation.OUT_OF_ORDER
        self._highest_seq = seq
        return Observation.APPLIED

    def gaps(self) -> list[tuple[int, int]]:
        """Missing seqs below the highest one seen, as inclusive (first, last) ranges."""
        ranges: list[tuple[int, int]] = []
        previous = self._contiguous_through
        for seq in sorted(self._applied_above):
            if seq > previous + 1:
                ranges.append((previous + 1, seq - 1))
            previous = seq
        return ranges

    def snapshot(self) -> TrackerSnapshot:
        return TrackerSnapshot(
            last_seq=self._highest_seq,
            received=self._received,
            applied=self._received - self._duplicates,
            duplicates=self._duplicates,
            gaps=self.gaps(),
            out_of_order=self._out_of_order,
            positions={account: dict(symbols) for account, symbols in self._positions.items()},
        )

    def _mark_applied(self, seq: int) -> None:
        if seq != self._contiguous_through + 1:
            self._applied_above.add(seq)
            return
        self._contiguous_through = seq
        while self._contiguous_through + 1 in self._applied_above:
            self._contiguous_through += 1
            self._applied_above.remove(self._contiguous_through)

    def _add_position(self, account: str, symbol: str, signed_quantity: int) -> None:
        symbols = self._positions.setdefault(account, {})
        symbols[symbol] = symbols.get(symbol, 0) + signed_quantity


def _positive_int(record: Mapping[str, object], name: str) -> int:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MalformedExecutionError(f"{name} must be a positive integer, not {value!r}")
    return value


def _text(record: Mapping[str, object], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedExecutionError(f"{name} must be a non-empty string, not {value!r}")
    return value
