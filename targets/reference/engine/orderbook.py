"""A price-time priority limit order book for one symbol.

Prices are integer ticks and quantities positive integers, so matching never touches floats.
Everything here is deterministic: price levels are kept in sorted lists and each level is an
insertion-ordered dict, so iterating a book gives the same sequence on every replica.

An incoming order trades against the best opposite price first and, within a price, against the
order that arrived first; each trade happens at the resting (maker) order's price. Whatever is
left rests in the book.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterator
from dataclasses import dataclass


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderStatus(enum.StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


@dataclass(slots=True)
class Order:
    """One order; the book and the engine's order table share the same object."""

    client_order_id: str
    account: str
    symbol: str
    side: Side
    price: int
    quantity: int
    ts_ns: int
    # Position in the engine's acceptance order. Time priority is decided by this counter,
    # never by a clock, so every replica queues orders identically.
    arrival: int
    filled: int = 0
    status: OrderStatus = OrderStatus.NEW

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)

    def fill(self, quantity: int) -> None:
        if quantity <= 0 or quantity > self.remaining:
            raise ValueError(f"cannot fill {quantity} of {self.client_order_id}")
        self.filled += quantity
        self.status = (
            OrderStatus.FILLED if self.filled == self.quantity else OrderStatus.PARTIALLY_FILLED
        )

    def to_record(self) -> dict[str, object]:
        """The order as PROTOCOL.md describes it on the wire."""
        return {
            "client_order_id": self.client_order_id,
            "account": self.account,
            "symbol": self.symbol,
            "side": str(self.side),
            "price": self.price,
            "quantity": self.quantity,
            "filled": self.filled,
            "status": str(self.status),
            "ts_ns": self.ts_ns,
        }


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade between an incoming order and a resting one, at the resting order's price."""

    maker: Order
    price: int
    quantity: int


class _BookSide:
    """The resting orders of one side: price levels in sorted order, FIFO within a level."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self._prices: list[int] = []  # ascending; the best bid is the last, the best ask the first
        self._levels: dict[int, dict[str, Order]] = {}

    def best_price(self) -> int | None:
        if not self._prices:
            return None
        return self._prices[-1] if self.side is Side.BUY else self._prices[0]

    def first_at(self, price: int) -> Order:
        return next(iter(self._levels[price].values()))

    def add(self, order: Order) -> None:
        level = self._levels.get(order.price)
        if level is None:
            level = self._levels[order.price] = {}
            bisect.insort(self._prices, order.price)
        level[order.client_order_id] = order

    def remove(self, order: Order) -> None:
        level = self._levels[order.price]
        del level[order.client_order_id]
        if not level:
            del self._levels[order.price]
            del self._prices[bisect.bisect_left(self._prices, order.price)]

    def levels(self) -> Iterator[tuple[int, list[Order]]]:
        """Levels from the best price outwards, each with its orders in time priority."""
        prices = reversed(self._prices) if self.side is Side.BUY else iter(self._prices)
        for price in prices:
            yield price, list(self._levels[price].values())


class OrderBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._sides = {Side.BUY: _BookSide(Side.BUY), Side.SELL: _BookSide(Side.SELL)}
        self._resting: dict[str, Order] = {}

    def submit(self, order: Order) -> list[Fill]:
        """Match `order` against the opposite side, then rest what is left of it."""
        if order.symbol != self.symbol:
            raise ValueError(f"order for {order.symbol} sent to the {self.symbol} book")
        fills = self._match(order)
        if order.remaining > 0:
            self._sides[order.side].add(order)
            self._resting[order.client_order_id] = order
        return fills

    def rest(self, order: Order) -> None:
        """Put an open order back without matching it: a book rebuilt from its open orders in
        arrival order is the book they came from (a checkpoint read back)."""
        self._sides[order.side].add(order)
        self._resting[order.client_order_id] = order

    def cancel(self, client_order_id: str) -> Order | None:
        """Take a resting order out of the book; None if it is not resting (unknown or done)."""
        order = self._resting.pop(client_order_id, None)
        if order is None:
            return None
        self._sides[order.side].remove(order)
        order.status = OrderStatus.CANCELLED
        return order

    def best_bid(self) -> int | None:
        return self._sides[Side.BUY].best_price()

    def best_ask(self) -> int | None:
        return self._sides[Side.SELL].best_price()

    def levels(self, side: Side) -> list[tuple[int, list[Order]]]:
        return list(self._sides[side].levels())

    def depth(self, side: Side) -> list[tuple[int, int]]:
        """(price, total remaining quantity) per level, best first."""
        return [(price, sum(o.remaining for o in orders)) for price, orders in self.levels(side)]

    def is_resting(self, client_order_id: str) -> bool:
        return client_order_id in self._resting

    def __len__(self) -> int:
        return len(self._resting)

    def _match(self, taker: Order) -> list[Fill]:
        opposite = self._sides[taker.side.opposite]
        fills: list[Fill] = []
        while taker.remaining > 0:
            best = opposite.best_price()
            if best is None or not _crosses(taker, best):
                break
            maker = opposite.first_at(best)
            quantity = min(taker.remaining, maker.remaining)
            maker.fill(quantity)
            taker.fill(quantity)
            fills.append(Fill(maker=maker, price=best, quantity=quantity))
            if maker.remaining == 0:
                opposite.remove(maker)
                del self._resting[maker.client_order_id]
        return fills


def _crosses(taker: Order, resting_price: int) -> bool:
    if taker.side is Side.BUY:
        return resting_price <= taker.price
    return resting_price >= taker.price
