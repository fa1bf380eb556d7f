"""The engine's deterministic state machine: order books, orders, executions, counters.

Pure logic: no clock, no randomness, no I/O and no PySyncObj, so the same commands applied in
the same order give the same state on every replica, in a unit test and in a later replay.
(The one exception is deliberate: the bugs `wall_clock_in_apply` and `unguarded_timestamps` of
targets/reference/bugs.py, passed in by the node, off unless switched on.)
`EngineState.apply(index, command_text, position)` is the only way state changes; `index` is the
Raft log index of the entry, `position` the command's place in that entry (group commit puts
many commands in one entry, batching.py; 0 for the first or only one), `command_text` its
canonical JSON (see commands.py). (index, position) strictly increases from one command to the
next. Both come from the replicated log, never from the replica itself, so every replica and a
replay see the same values: they are recorded with each command and chained into
`commands_digest`, which is what makes replicas that applied different entries disagree.

Every applied command is kept with its index (`applied_commands()`), so the command log can be
read back from any replica and `replay()` rebuilds an identical state from it. The same log can
also be read from a node's PySyncObj journal file with `journal.read_commands()`.

State hash
----------
`state_hash()` is the SHA-256 (hex) of a canonical JSON summary whose fields are digests of the
whole state, each maintained incrementally so hashing stays O(1) however large the state grows:

- `orders_digest`: the sum mod 2**256 of SHA-256(canonical order entry) over every order ever
  accepted, the entry holding its fields, fill, status and arrival number. A changed order
  swaps its old term for the new one. The books are covered through it: a book is exactly the
  open orders of its symbol, by price and then arrival.
- `executions_digest`: a SHA-256 chain over the executions in `seq` order.
- `commands_digest`: a SHA-256 chain over (Raft index, position, command text) of every applied
  command, so replicas that applied different log entries disagree even where the effects
  coincide. The link of a command at position 0 is `index:text`, as before group commit, so
  the hash of an unbatched log is unchanged (runs recorded earlier still replay to their hash).
- counters: number of orders, executions and commands, `published_seq`.

`canonical_snapshot()` gives the same content in full (books included) for forensics, and
`digests_are_consistent()` recomputes the digests from scratch to check the incremental ones.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from targets.reference.engine.commands import (
    CancelOrder,
    Command,
    CommandError,
    MarkPublished,
    NewOrder,
    canonical_json,
    decode,
)
from targets.reference.engine.orderbook import Fill, Order, OrderBook, OrderStatus, Side

STATE_FORMAT = 1
_CHAIN_START = bytes(32)
_DIGEST_MODULUS = 2**256

Result = dict[str, object]


class AppliedCommand(NamedTuple):
    raft_index: int
    text: str
    position: int = 0  # the command's place in its Raft entry (group commit)

    @property
    def key(self) -> tuple[int, int]:
        return (self.raft_index, self.position)


@dataclass(frozen=True, slots=True)
class Execution:
    seq: int
    symbol: str
    price: int
    quantity: int
    buy_order_id: str
    sell_order_id: str
    buy_account: str
    sell_account: str
    aggressor: Side
    ts_ns: int

    def to_record(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "symbol": self.symbol,
            "price": self.price,
            "quantity": self.quantity,
            "buy_order_id": self.buy_order_id,
            "sell_order_id": self.sell_order_id,
            "buy_account": self.buy_account,
            "sell_account": self.sell_account,
            "aggressor": str(self.aggressor),
            "ts_ns": self.ts_ns,
        }


@dataclass(frozen=True, slots=True)
class _Acceptance:
    """What a `new` returned when first applied, so a duplicate can answer exactly the same."""

    filled: int
    status: OrderStatus
    first_seq: int
    execution_count: int


_OrderChange = tuple[Order, int, OrderStatus, int]  # order, filled, status, digest term


@dataclass(frozen=True)
class StateChanges:
    """An `EngineState`'s changes between two `take_changes` calls, and its digests after
    them: one record of a checkpoint log (checkpoint.py)."""

    # Every change of an order, in order, with its fill, status and digest term right after
    # it (an order changed twice is here twice; the later supersedes).
    orders: list[_OrderChange]
    acceptances: list[tuple[str, _Acceptance]]  # of the orders new since the last take
    executions_from: int
    executions: list[Execution]
    commands_from: int
    commands: list[AppliedCommand]
    published_seq: int
    orders_digest: int
    executions_digest: bytes
    commands_digest: bytes

    def image(self) -> dict[str, object]:
        """As plain data, in the layout of `EngineState.__getstate__` (orders, acceptances and
        order terms only of the changed orders; executions and commands only the new ones,
        after the first `executions_from` and `commands_from`)."""
        changes = self.orders
        return {
            "format": STATE_FORMAT,
            "orders": [_order_row(order, filled, status) for order, filled, status, _ in changes],
            "acceptances": {order_id: _acceptance_row(a) for order_id, a in self.acceptances},
            "order_terms": {order.client_order_id: term for order, _, _, term in changes},
            "executions_from": self.executions_from,
            "executions": [_execution_row(execution) for execution in self.executions],
            "commands_from": self.commands_from,
            "commands": [_command_row(command) for command in self.commands],
            "published_seq": self.published_seq,
            "orders_digest": self.orders_digest,
            "executions_digest": self.executions_digest,
            "commands_digest": self.commands_digest,
        }


class EngineState:
    def __init__(self, bugs: frozenset[str] = frozenset()) -> None:
        # Deliberate bugs (targets/reference/bugs.py); a replay never passes any.
        self._bugs = bugs
        self._books: dict[str, OrderBook] = {}
        self._orders: dict[str, Order] = {}
        # The same orders in arrival order, so that a page of them is a slice: skipping to
        # the 590,000th of a dict's values held the GIL ~12 ms for each page read.
        self._arrivals: list[Order] = []
        self._acceptances: dict[str, _Acceptance] = {}
        self._executions: list[Execution] = []
        self._commands: list[AppliedCommand] = []
        self._published_seq = 0
        self._order_terms: dict[str, int] = {}
        self._orders_digest = 0
        self._executions_digest = _CHAIN_START
        self._commands_digest = _CHAIN_START
        self._hash_cache: str | None = None
        # Checkpoints (track_changes): the order changes and new acceptances since the last
        # take_changes, and how many executions and commands had been taken by then.
        self._changed: list[_OrderChange] | None = None
        self._new_acceptances: list[tuple[str, _Acceptance]] = []
        self._executions_taken = 0
        self._commands_taken = 0

    # ----------------------------------------------------------------- the only mutator

    def apply(self, index: int, command_text: str, position: int = 0) -> Result:
        """Apply one committed command (the `position`-th of log entry `index`) and return its
        result (JSON-ready). Never raises for a bad command: it is recorded and answered with
        an error, like any other entry."""
        last = self._commands[-1].key if self._commands else (0, 0)
        if (index, position) <= last or position < 0:
            raise ValueError(
                f"log index {index} position {position} applied after "
                f"index {last[0]} position {last[1]}"
            )
        self._record_command(AppliedCommand(index, command_text, position))
        self._hash_cache = None
        try:
            command = decode(command_text)
        except CommandError as error:
            return {"error": f"malformed command: {error}"}
        return self._apply_command(command)

    def _apply_command(self, command: Command) -> Result:
        match command:
            case NewOrder():
                return self._apply_new(command)
            case CancelOrder():
                return self._apply_cancel(command)
            case MarkPublished():
                return self._apply_mark_published(command)

    def _apply_new(self, command: NewOrder) -> Result:
        if command.client_order_id in self._orders:
            return self._duplicate_result(command.client_order_id)
        order = Order(
            client_order_id=command.client_order_id,
            account=command.account,
            symbol=command.symbol,
            side=command.side,
            price=command.price,
            quantity=command.quantity,
            ts_ns=command.ts_ns,
            arrival=len(self._orders) + 1,
        )
        self._orders[order.client_order_id] = order
        self._arrivals.append(order)
        book = self._books.get(order.symbol)
        if book is None:
            book = self._books[order.symbol] = OrderBook(order.symbol)
        first_seq = self.last_exec_seq + 1
        fills = book.submit(order)
        executions = [self._record_execution(order, fill, command) for fill in fills]
        accepted = self._acceptances[order.client_order_id] = _Acceptance(
            filled=order.filled,
            status=order.status,
            first_seq=first_seq,
            execution_count=len(executions),
        )
        if self._changed is not None:
            self._new_acceptances.append((order.client_order_id, accepted))
        for touched in [order, *(fill.maker for fill in fills)]:
            self._refresh_order_term(touched)
        return {
            "order": order.to_record(),
            "executions": [execution.to_record() for execution in executions],
            "duplicate": False,
        }

    def _apply_cancel(self, command: CancelOrder) -> Result:
        order = self._orders.get(command.client_order_id)
        if order is None:
            return {"order": None, "executions": [], "cancelled": False, "reason": "unknown_order"}
        if not order.is_open:
            return {
                "order": order.to_record(),
                "executions": [],
                "cancelled": False,
                "reason": f"already_{order.status}",
            }
        self._books[order.symbol].cancel(order.client_order_id)
        self._refresh_order_term(order)
        return {"order": order.to_record(), "executions": [], "cancelled": True, "reason": None}

    def _apply_mark_published(self, command: MarkPublished) -> Result:
        # Never backwards (a stale leader's late proposal) and never past what exists.
        self._published_seq = max(self._published_seq, min(command.seq, self.last_exec_seq))
        return {"published_seq": self._published_seq}

    def _duplicate_result(self, client_order_id: str) -> Result:
        order = self._orders[client_order_id]
        accepted = self._acceptances[client_order_id]
        start = accepted.first_seq - 1
        executions = self._executions[start : start + accepted.execution_count]
        return {
            "order": {
                **order.to_record(),
                "filled": accepted.filled,
                "status": str(accepted.status),
            },
            "executions": [execution.to_record() for execution in executions],
            "duplicate": True,
        }

    def _record_execution(self, taker: Order, fill: Fill, command: NewOrder) -> Execution:
        buy, sell = (taker, fill.maker) if taker.side is Side.BUY else (fill.maker, taker)
        execution = Execution(
            seq=self.last_exec_seq + 1,
            symbol=taker.symbol,
            price=fill.price,
            quantity=fill.quantity,
            buy_order_id=buy.client_order_id,
            sell_order_id=sell.client_order_id,
            buy_account=buy.account,
            sell_account=sell.account,
            aggressor=taker.side,
            ts_ns=self._execution_time(command),
        )
        self._executions.append(execution)
        self._executions_digest = _chain(
            self._executions_digest, canonical_json(execution.to_record())
        )
        return execution

    def _execution_time(self, command: NewOrder) -> int:
        if "wall_clock_in_apply" in self._bugs:  # deliberate bug: replicas and replays differ
            return time.time_ns()
        if "unguarded_timestamps" in self._bugs:  # deliberate bug: clock steps reach the stream
            return command.ts_ns
        return _execution_time(command, self._executions[-1] if self._executions else None)

    def _record_command(self, command: AppliedCommand) -> None:
        self._commands.append(command)
        self._commands_digest = _chain(self._commands_digest, _command_link(command))

    def _refresh_order_term(self, order: Order) -> None:
        term = _order_term(order)
        previous = self._order_terms.get(order.client_order_id, 0)
        self._order_terms[order.client_order_id] = term
        self._orders_digest = (self._orders_digest - previous + term) % _DIGEST_MODULUS
        if self._changed is not None:
            # Its fill and status now: the only fields of an order that change, so the rest
            # can be read later, on the checkpoint writer's thread.
            self._changed.append((order, order.filled, order.status, term))

    # ----------------------------------------------------------------- checkpoints
    #
    # Pickled as they are, the orders, executions and commands took ~28 us per command to
    # write and ~30 us to read (slotted dataclasses, enums and named tuples each go through a
    # Python-level reduce), as long as replaying the commands. As plain tuples they pickle in
    # C; the books are rebuilt from the open orders, in arrival order.

    def __getstate__(self) -> dict[str, object]:
        return {
            "format": STATE_FORMAT,
            "orders": [_order_entry(order) for order in self._orders.values()],
            "acceptances": {
                order_id: _acceptance_row(a) for order_id, a in self._acceptances.items()
            },
            "executions": [_execution_row(execution) for execution in self._executions],
            "commands": [_command_row(c) for c in self._commands],
            "published_seq": self._published_seq,
            "order_terms": self._order_terms,
            "orders_digest": self._orders_digest,
            "executions_digest": self._executions_digest,
            "commands_digest": self._commands_digest,
        }

    def __setstate__(self, image: dict[str, Any]) -> None:
        if image.get("format") != STATE_FORMAT:
            raise ValueError(f"state format {image.get('format')!r}, expected {STATE_FORMAT}")
        EngineState.__init__(self)  # the empty state, then its content
        for row in image["orders"]:
            order = _order_of(row)
            self._orders[order.client_order_id] = order
            self._arrivals.append(order)
            book = self._books.get(order.symbol)
            if book is None:
                book = self._books[order.symbol] = OrderBook(order.symbol)
            if order.is_open:
                book.rest(order)
        self._acceptances = {
            order_id: _Acceptance(filled, _STATUSES[status], first_seq, count)
            for order_id, (filled, status, first_seq, count) in image["acceptances"].items()
        }
        self._executions = [_execution_of(row) for row in image["executions"]]
        self._commands = list(map(AppliedCommand._make, image["commands"]))
        self._published_seq = image["published_seq"]
        self._order_terms = image["order_terms"]
        self._orders_digest = image["orders_digest"]
        self._executions_digest = image["executions_digest"]
        self._commands_digest = image["commands_digest"]
        # The rows of a folded checkpoint log need not come in arrival order.
        self._arrivals.sort(key=lambda order: order.arrival)

    def track_changes(self) -> None:
        """Remember from now on which orders change, for `take_changes` (an order changes
        only through `_refresh_order_term`, which every mutation of one calls)."""
        self._changed = []
        self._new_acceptances = []
        self._executions_taken = len(self._executions)
        self._commands_taken = len(self._commands)

    def take_changes(self) -> StateChanges:
        """What changed since `track_changes` or the last call. The applies kept the list as
        they went (a tuple per order change), so taking it costs the tick thread two list
        swaps and two slices of immutable objects, whatever the number of changes;
        `StateChanges.image` makes plain data of it later, on another thread."""
        changed = self._changed
        if changed is None:
            raise RuntimeError("take_changes before track_changes")
        acceptances = self._new_acceptances
        self._changed, self._new_acceptances = [], []
        executions_from, self._executions_taken = self._executions_taken, len(self._executions)
        commands_from, self._commands_taken = self._commands_taken, len(self._commands)
        return StateChanges(
            orders=changed,
            acceptances=acceptances,
            executions_from=executions_from,
            executions=self._executions[executions_from:],
            commands_from=commands_from,
            commands=self._commands[commands_from:],
            published_seq=self._published_seq,
            orders_digest=self._orders_digest,
            executions_digest=self._executions_digest,
            commands_digest=self._commands_digest,
        )

    # ----------------------------------------------------------------- read-only views

    @property
    def bugs(self) -> frozenset[str]:
        return self._bugs

    def use_bugs(self, bugs: frozenset[str]) -> None:
        """For a state read back from a checkpoint: the deliberate bugs of the process now."""
        self._bugs = bugs

    @property
    def command_count(self) -> int:
        return len(self._commands)

    @property
    def last_index(self) -> int:
        """Raft index of the last applied command (0 before any)."""
        return self._commands[-1].raft_index if self._commands else 0

    @property
    def last_exec_seq(self) -> int:
        return len(self._executions)

    @property
    def published_seq(self) -> int:
        return self._published_seq

    def order_record(self, client_order_id: str) -> dict[str, object] | None:
        order = self._orders.get(client_order_id)
        return order.to_record() if order is not None else None

    def execution_records(self, from_seq: int, limit: int) -> list[dict[str, object]]:
        start = max(from_seq, 1) - 1
        return [e.to_record() for e in self._executions[start : start + max(limit, 0)]]

    def order_records(self, from_arrival: int, limit: int) -> list[dict[str, object]]:
        """Orders in arrival order, from the `from_arrival`-th (1-based), at most `limit`."""
        start = max(from_arrival, 1) - 1
        return [order.to_record() for order in self._arrivals[start : start + max(limit, 0)]]

    def last_new_order(self) -> NewOrder | None:
        """The last applied `new` command (for the reapply_on_new_leader bug)."""
        for entry in reversed(self._commands):
            command = _decoded_or_none(entry.text)
            if isinstance(command, NewOrder):
                return command
        return None

    def applied_commands(self, from_index: int = 0) -> list[AppliedCommand]:
        return [entry for entry in self._commands if entry.raft_index >= from_index]

    def book(self, symbol: str) -> OrderBook | None:
        """For inspection only: mutating the book outside `apply` breaks replication."""
        return self._books.get(symbol)

    def state_hash(self) -> str:
        if self._hash_cache is None:
            self._hash_cache = hashlib.sha256(canonical_json(self._summary()).encode()).hexdigest()
        return self._hash_cache

    def _summary(self) -> dict[str, object]:
        return {
            "format": STATE_FORMAT,
            "orders": len(self._orders),
            "orders_digest": f"{self._orders_digest:064x}",
            "executions": len(self._executions),
            "executions_digest": self._executions_digest.hex(),
            "commands": len(self._commands),
            "commands_digest": self._commands_digest.hex(),
            "published_seq": self._published_seq,
        }

    def canonical_snapshot(self) -> dict[str, object]:
        """The whole state as one JSON-ready document (O(size): for forensics and tests)."""
        return {
            "format": STATE_FORMAT,
            "books": {
                symbol: {
                    str(side): [
                        [price, [[o.client_order_id, o.remaining] for o in orders]]
                        for price, orders in book.levels(side)
                    ]
                    for side in Side
                }
                for symbol, book in sorted(self._books.items())
            },
            "orders": [_order_entry(order) for order in self._orders.values()],
            "executions": [execution.to_record() for execution in self._executions],
            "commands": [
                [entry.raft_index, entry.position, entry.text] for entry in self._commands
            ],
            "published_seq": self._published_seq,
        }

    def digests_are_consistent(self) -> bool:
        """Recompute every digest from scratch and compare with the incremental ones."""
        orders = sum(_order_term(order) for order in self._orders.values()) % _DIGEST_MODULUS
        executions = _CHAIN_START
        for execution in self._executions:
            executions = _chain(executions, canonical_json(execution.to_record()))
        commands = _CHAIN_START
        for entry in self._commands:
            commands = _chain(commands, _command_link(entry))
        return (orders, executions, commands) == (
            self._orders_digest,
            self._executions_digest,
            self._commands_digest,
        )


def replay(entries: Iterable[AppliedCommand | tuple[int, str]]) -> EngineState:
    """A fresh state with `(raft_index, command_text[, position])` commands applied in order."""
    state = EngineState()
    for entry in entries:
        state.apply(*entry)
    return state


def _command_link(command: AppliedCommand) -> str:
    if command.position == 0:
        return f"{command.raft_index}:{command.text}"
    return f"{command.raft_index}.{command.position}:{command.text}"


def _execution_time(command: NewOrder, previous: Execution | None) -> int:
    """Executions carry the aggressor command's timestamp, which the leader stamped before
    proposing: reading a clock here would make replicas (and replays) disagree.

    A new leader whose wall clock is behind the old one's (clock skew, NTP step) would stamp
    times earlier than executions already published; downstream consumers order by time, so
    the stream never goes backwards: at least the previous execution's time. This depends only
    on the replicated state, so it stays deterministic."""
    if previous is not None and command.ts_ns < previous.ts_ns:
        return previous.ts_ns
    return command.ts_ns


def _decoded_or_none(text: str) -> Command | None:
    try:
        return decode(text)
    except CommandError:
        return None


def _order_entry(order: Order) -> list[object]:
    """The order as its digest term and checkpoints hold it."""
    return _order_row(order, order.filled, order.status)


_SIDES = {side.value: side for side in Side}
_STATUSES = {status.value: status for status in OrderStatus}


def _order_of(row: list[Any]) -> Order:
    """The inverse of `_order_entry`."""
    arrival, order_id, account, symbol, side, price, quantity, filled, status, ts_ns = row
    return Order(order_id, account, symbol, _SIDES[side], price, quantity, ts_ns, arrival,
                 filled, _STATUSES[status])  # fmt: skip


_SIDE_VALUES = {side: side.value for side in Side}
_STATUS_VALUES = {status: status.value for status in OrderStatus}


def _order_row(order: Order, filled: int, status: OrderStatus) -> list[object]:
    """`_order_entry` of `order` as it was with that fill and status (the fields that change)."""
    return [order.arrival, order.client_order_id, order.account, order.symbol,
            _SIDE_VALUES[order.side], order.price, order.quantity, filled,
            _STATUS_VALUES[status], order.ts_ns]  # fmt: skip


def _acceptance_row(a: _Acceptance) -> tuple[int, str, int, int]:
    return (a.filled, a.status.value, a.first_seq, a.execution_count)


def _command_row(c: AppliedCommand) -> tuple[int, str, int]:
    return (c.raft_index, c.text, c.position)


def _execution_row(e: Execution) -> tuple[object, ...]:
    return (e.seq, e.symbol, e.price, e.quantity, e.buy_order_id, e.sell_order_id,
            e.buy_account, e.sell_account, e.aggressor.value, e.ts_ns)  # fmt: skip


def _execution_of(row: tuple[Any, ...]) -> Execution:
    seq, symbol, price, quantity, buy_id, sell_id, buy_account, sell_account, side, ts = row
    return Execution(seq, symbol, price, quantity, buy_id, sell_id, buy_account, sell_account,
                     _SIDES[side], ts)  # fmt: skip


def _order_term(order: Order) -> int:
    digest = hashlib.sha256(canonical_json(_order_entry(order)).encode()).digest()
    return int.from_bytes(digest, "big")


def _chain(previous: bytes, text: str) -> bytes:
    return hashlib.sha256(previous + text.encode()).digest()
