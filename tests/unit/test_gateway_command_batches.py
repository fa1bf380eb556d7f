"""The gateway's command batches, pure of HTTP: a fake exchange records what each batch held."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from targets.reference.gateway.command_batches import CommandBatches, _Queued, take_batch


class Exchange:
    """Answers each body with (node, body, size of its batch); holds batches while `hold` is
    clear, so that callers pile up behind the ones in flight."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.in_flight = threading.Semaphore(0)
        self.fail = False

    def __call__(self, node: str, bodies: Sequence[bytes]) -> list[tuple[str, bytes, int]]:
        self.batches.append(list(bodies))
        self.in_flight.release()
        self.hold.wait(10)
        if self.fail:
            raise ConnectionError("the wire broke")
        return [(node, body, len(bodies)) for body in bodies]


def batches_for(exchange: Exchange, senders: int = 1) -> CommandBatches[str, object]:
    return CommandBatches(
        exchange,
        on_crash=lambda problem: ("crash", problem),
        on_closed=("closed",),
        senders_per_node=senders,
        max_commands=4,
        max_bytes=100,
    )


NOT_SENT = ("not sent",)


def attempt(
    batches: CommandBatches[str, object], node: str, body: bytes, within_s: float = 30.0
) -> object:
    return batches.attempt(node, body, time.monotonic() + within_s, NOT_SENT)


def queued(*sizes: int) -> deque[_Queued[object]]:
    return deque(_Queued(b"x" * size) for size in sizes)


def test_a_batch_takes_the_oldest_commands_within_both_bounds() -> None:
    items = queued(10, 10, 10, 10, 10, 10)
    assert [len(item.body) for item in take_batch(items, 4, 1000)] == [10, 10, 10, 10]
    assert len(items) == 2
    # 30 + 1 + 30 + 1 (commas) = 62 fits in 70; a third would not.
    items = queued(30, 30, 30)
    assert len(take_batch(items, 10, 70)) == 2
    # One command larger than the byte bound still goes, alone.
    items = queued(500, 1)
    assert [len(item.body) for item in take_batch(items, 10, 100)] == [500]


def test_a_lone_command_goes_at_once_in_a_batch_of_its_own() -> None:
    exchange = Exchange()
    batches = batches_for(exchange)
    try:
        assert attempt(batches, "n1", b"a") == ("n1", b"a", 1)
        assert attempt(batches, "n2", b"b") == ("n2", b"b", 1)
    finally:
        batches.close()
    assert exchange.batches == [[b"a"], [b"b"]]


def test_commands_queued_behind_a_batch_in_flight_share_the_next_and_get_their_own_answer() -> None:
    exchange = Exchange()
    exchange.hold.clear()
    batches = batches_for(exchange)
    bodies = [f"c{n}".encode() for n in range(9)]
    try:
        with ThreadPoolExecutor(len(bodies)) as pool:
            first = pool.submit(attempt, batches, "n1", bodies[0])
            assert exchange.in_flight.acquire(timeout=5)  # the first batch is out, and held
            rest = [pool.submit(attempt, batches, "n1", body) for body in bodies[1:]]
            while len(batches._queues["n1"].items) < len(rest):  # all queued behind it
                threading.Event().wait(0.001)
            exchange.hold.set()
            answers = [first.result(5)] + [future.result(5) for future in rest]
    finally:
        batches.close()
    assert [answer[1] for answer in answers] == bodies  # type: ignore[index]
    # One, then the eight that waited, in batches of at most four, in arrival order.
    assert [len(batch) for batch in exchange.batches] == [1, 4, 4]
    assert sorted(body for batch in exchange.batches[1:] for body in batch) == bodies[1:]


def test_a_batch_whose_exchange_raises_is_a_crash_for_every_command_in_it() -> None:
    exchange = Exchange()
    exchange.fail = True
    batches = batches_for(exchange)
    try:
        answer = attempt(batches, "n1", b"a")
    finally:
        batches.close()
    assert answer == ("crash", "sending a batch failed: ConnectionError('the wire broke')")


def test_close_answers_what_is_still_queued_and_refuses_new_commands() -> None:
    exchange = Exchange()
    exchange.hold.clear()
    batches = batches_for(exchange)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(attempt, batches, "n1", b"a")
        assert exchange.in_flight.acquire(timeout=5)
        waiting = pool.submit(attempt, batches, "n1", b"b")
        while not batches._queues["n1"].items:
            threading.Event().wait(0.001)
        batches.close()
        assert waiting.result(5) == ("closed",)  # never sent
        exchange.hold.set()
        assert first.result(5) == ("n1", b"a", 1)  # in flight: its own answer
    assert attempt(batches, "n1", b"c") == ("closed",)
    assert exchange.batches == [[b"a"]]


def test_bounds_must_leave_room_for_a_command() -> None:
    with pytest.raises(ValueError, match="room for one command"):
        CommandBatches[str, object](Exchange(), on_crash=str, on_closed="", max_commands=0)


def test_a_command_no_sender_took_by_its_deadline_is_taken_back_unsent() -> None:
    exchange = Exchange()
    exchange.hold.clear()
    batches = batches_for(exchange)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(attempt, batches, "n1", b"a")
            assert exchange.in_flight.acquire(timeout=5)  # the only sender is stuck with it
            assert attempt(batches, "n1", b"late", within_s=0.05) == NOT_SENT
            assert not batches._queues["n1"].items  # taken back, so never sent
            exchange.hold.set()
            assert first.result(5) == ("n1", b"a", 1)
    finally:
        batches.close()
    assert exchange.batches == [[b"a"]]


def test_withdraw_answers_every_queued_command_unsent_and_none_in_flight() -> None:
    exchange = Exchange()
    exchange.hold.clear()
    batches = batches_for(exchange)
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(attempt, batches, "n1", b"a")
            assert exchange.in_flight.acquire(timeout=5)
            waiting = [pool.submit(attempt, batches, "n1", body) for body in (b"b", b"c")]
            while len(batches._queues["n1"].items) < 2:
                threading.Event().wait(0.001)
            assert batches.withdraw("n1", ("withdrawn",)) == 2
            assert [future.result(5) for future in waiting] == [("withdrawn",)] * 2
            assert batches.withdraw("n2", ("withdrawn",)) == 0  # a node never used
            exchange.hold.set()
            assert first.result(5) == ("n1", b"a", 1)  # in flight: its own answer
    finally:
        batches.close()
    assert exchange.batches == [[b"a"]]
