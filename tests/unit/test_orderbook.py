from __future__ import annotations

import itertools

import pytest

from targets.reference.engine.orderbook import Order, OrderBook, OrderStatus, Side

_arrivals = itertools.count(1)


def order(
    client_order_id: str, side: Side, price: int, quantity: int, account: str = "acct"
) -> Order:
    return Order(
        client_order_id=client_order_id,
        account=account,
        symbol="ACME",
        side=side,
        price=price,
        quantity=quantity,
        ts_ns=0,
        arrival=next(_arrivals),
    )


def fills_of(book: OrderBook, incoming: Order) -> list[tuple[str, int, int]]:
    return [(f.maker.client_order_id, f.price, f.quantity) for f in book.submit(incoming)]


def test_order_that_does_not_cross_rests_on_its_side() -> None:
    book = OrderBook("ACME")
    assert fills_of(book, order("b1", Side.BUY, 100, 5)) == []
    assert fills_of(book, order("s1", Side.SELL, 101, 5)) == []
    assert (book.best_bid(), book.best_ask()) == (100, 101)
    assert len(book) == 2


def test_better_price_trades_first_at_the_resting_price() -> None:
    book = OrderBook("ACME")
    book.submit(order("s-high", Side.SELL, 102, 5))
    book.submit(order("s-low", Side.SELL, 101, 5))
    # A buy at 105 takes the cheapest offer first, and pays the resting price, not its limit.
    assert fills_of(book, order("b1", Side.BUY, 105, 5)) == [("s-low", 101, 5)]
    assert book.best_ask() == 102


def test_same_price_trades_in_arrival_order() -> None:
    book = OrderBook("ACME")
    book.submit(order("b-first", Side.BUY, 100, 3))
    book.submit(order("b-second", Side.BUY, 100, 3))
    assert fills_of(book, order("s1", Side.SELL, 100, 4)) == [
        ("b-first", 100, 3),
        ("b-second", 100, 1),
    ]


def test_partial_fill_leaves_the_maker_partially_filled_at_the_front() -> None:
    book = OrderBook("ACME")
    maker = order("s1", Side.SELL, 100, 10)
    book.submit(maker)
    book.submit(order("s2", Side.SELL, 100, 10))
    taker = order("b1", Side.BUY, 100, 4)
    assert fills_of(book, taker) == [("s1", 100, 4)]
    assert (taker.filled, taker.status) == (4, OrderStatus.FILLED)
    assert (maker.filled, maker.remaining, maker.status) == (4, 6, OrderStatus.PARTIALLY_FILLED)
    # The partially filled maker keeps its place in the queue.
    assert fills_of(book, order("b2", Side.BUY, 100, 7)) == [("s1", 100, 6), ("s2", 100, 1)]


def test_taker_remainder_rests_after_sweeping_several_levels() -> None:
    book = OrderBook("ACME")
    book.submit(order("s1", Side.SELL, 100, 2))
    book.submit(order("s2", Side.SELL, 101, 2))
    book.submit(order("s3", Side.SELL, 103, 2))
    taker = order("b1", Side.BUY, 102, 10)
    assert fills_of(book, taker) == [("s1", 100, 2), ("s2", 101, 2)]
    assert (taker.filled, taker.status) == (4, OrderStatus.PARTIALLY_FILLED)
    assert book.best_bid() == 102
    assert book.best_ask() == 103
    assert book.depth(Side.BUY) == [(102, 6)]
    assert book.depth(Side.SELL) == [(103, 2)]


def test_sell_aggressor_walks_bids_from_the_highest() -> None:
    book = OrderBook("ACME")
    book.submit(order("b-low", Side.BUY, 98, 1))
    book.submit(order("b-high", Side.BUY, 99, 1))
    assert fills_of(book, order("s1", Side.SELL, 98, 3)) == [("b-high", 99, 1), ("b-low", 98, 1)]
    # Both bids are gone; the seller's last unit rests as the new offer.
    assert (book.best_bid(), book.best_ask()) == (None, 98)


def test_depth_lists_levels_best_first_with_total_remaining() -> None:
    book = OrderBook("ACME")
    for name, price, quantity in [("b1", 99, 1), ("b2", 100, 2), ("b3", 100, 3), ("b4", 97, 4)]:
        book.submit(order(name, Side.BUY, price, quantity))
    assert book.depth(Side.BUY) == [(100, 5), (99, 1), (97, 4)]


def test_cancel_removes_a_resting_order_and_its_empty_level() -> None:
    book = OrderBook("ACME")
    book.submit(order("s1", Side.SELL, 100, 5))
    book.submit(order("s2", Side.SELL, 101, 5))
    cancelled = book.cancel("s1")
    assert cancelled is not None
    assert cancelled.status is OrderStatus.CANCELLED
    assert book.best_ask() == 101
    assert not book.is_resting("s1")
    # Nothing is left at 100 to trade against.
    assert fills_of(book, order("b1", Side.BUY, 100, 5)) == []


def test_cancel_of_a_partially_filled_order_keeps_its_fills() -> None:
    book = OrderBook("ACME")
    maker = order("s1", Side.SELL, 100, 5)
    book.submit(maker)
    book.submit(order("b1", Side.BUY, 100, 2))
    assert book.cancel("s1") is maker
    assert (maker.filled, maker.status) == (2, OrderStatus.CANCELLED)
    assert book.depth(Side.SELL) == []


def test_cancel_of_a_filled_or_unknown_order_changes_nothing() -> None:
    book = OrderBook("ACME")
    filled = order("s1", Side.SELL, 100, 5)
    book.submit(filled)
    book.submit(order("b1", Side.BUY, 100, 5))
    book.submit(order("s2", Side.SELL, 105, 1))
    assert book.cancel("s1") is None
    assert filled.status is OrderStatus.FILLED
    assert book.cancel("never-seen") is None
    assert book.cancel("s2") is not None
    assert book.cancel("s2") is None  # a second cancel finds nothing
    assert len(book) == 0


def test_order_for_another_symbol_is_refused() -> None:
    book = OrderBook("OTHER")
    with pytest.raises(ValueError, match="ACME"):
        book.submit(order("b1", Side.BUY, 100, 1))
