import pytest

from targets.reference.consumer.tracker import (
    Execution,
    ExecutionTracker,
    MalformedExecutionError,
    Observation,
    parse_execution,
)


def execution(seq: int, quantity: int = 10, buyer: str = "a", seller: str = "b") -> Execution:
    return Execution(
        seq=seq, symbol="ACME", quantity=quantity, buy_account=buyer, sell_account=seller
    )


def feed(tracker: ExecutionTracker, *seqs: int) -> list[Observation]:
    return [tracker.observe(execution(seq)) for seq in seqs]


def test_in_order_stream_has_no_gaps() -> None:
    tracker = ExecutionTracker()
    assert feed(tracker, 1, 2, 3) == [Observation.APPLIED] * 3
    snapshot = tracker.snapshot()
    assert (snapshot.last_seq, snapshot.received, snapshot.applied) == (3, 3, 3)
    assert (snapshot.duplicates, snapshot.out_of_order, snapshot.gaps) == (0, 0, [])


def test_redelivered_seqs_count_once() -> None:
    tracker = ExecutionTracker()
    observations = feed(tracker, 1, 2, 2, 1, 3, 3)
    assert observations.count(Observation.DUPLICATE) == 3
    snapshot = tracker.snapshot()
    assert (snapshot.received, snapshot.applied, snapshot.duplicates) == (6, 3, 3)
    assert snapshot.positions == {"a": {"ACME": 30}, "b": {"ACME": -30}}


def test_missing_seqs_are_reported_as_inclusive_ranges() -> None:
    tracker = ExecutionTracker()
    feed(tracker, 2, 3, 6, 9)
    assert tracker.snapshot().gaps == [(1, 1), (4, 5), (7, 8)]
    assert tracker.snapshot().last_seq == 9


def test_late_arrivals_close_gaps_and_count_as_out_of_order() -> None:
    tracker = ExecutionTracker()
    assert feed(tracker, 1, 4, 2, 3) == [
        Observation.APPLIED,
        Observation.APPLIED,
        Observation.OUT_OF_ORDER,
        Observation.OUT_OF_ORDER,
    ]
    snapshot = tracker.snapshot()
    assert (snapshot.gaps, snapshot.out_of_order, snapshot.last_seq) == ([], 2, 4)


def test_duplicates_of_seqs_above_a_gap_are_detected() -> None:
    tracker = ExecutionTracker()
    assert feed(tracker, 1, 5, 5) == [
        Observation.APPLIED,
        Observation.APPLIED,
        Observation.DUPLICATE,
    ]
    assert tracker.snapshot().gaps == [(2, 4)]


def test_positions_are_per_account_and_symbol() -> None:
    tracker = ExecutionTracker()
    tracker.observe(execution(1, quantity=5, buyer="a", seller="b"))
    tracker.observe(execution(2, quantity=3, buyer="b", seller="c"))
    tracker.observe(Execution(3, "OTHER", 7, buy_account="c", sell_account="a"))
    tracker.observe(execution(4, quantity=2, buyer="d", seller="d"))  # self-trade nets out
    assert tracker.snapshot().positions == {
        "a": {"ACME": 5, "OTHER": -7},
        "b": {"ACME": -2},
        "c": {"ACME": -3, "OTHER": 7},
        "d": {"ACME": 0},
    }


def test_snapshot_is_a_copy() -> None:
    tracker = ExecutionTracker()
    feed(tracker, 1)
    snapshot = tracker.snapshot()
    feed(tracker, 2)
    assert snapshot.positions == {"a": {"ACME": 10}, "b": {"ACME": -10}}


def test_a_wire_execution_parses() -> None:
    record = {
        "seq": 1,
        "symbol": "ACME",
        "price": 10125,
        "quantity": 10,
        "buy_order_id": "c-1",
        "sell_order_id": "c-2",
        "buy_account": "a",
        "sell_account": "b",
        "aggressor": "buy",
        "ts_ns": 1,
    }
    assert parse_execution(record) == execution(1)


@pytest.mark.parametrize(
    ("record", "complaint"),
    [
        ([], "JSON object"),
        ({"seq": 0, "symbol": "S", "quantity": 1, "buy_account": "a", "sell_account": "b"}, "seq"),
        (
            {"seq": 1, "symbol": "", "quantity": 1, "buy_account": "a", "sell_account": "b"},
            "symbol",
        ),
        (
            {"seq": 1, "symbol": "S", "quantity": True, "buy_account": "a", "sell_account": "b"},
            "quantity",
        ),
        ({"seq": 1, "symbol": "S", "quantity": 1, "sell_account": "b"}, "buy_account"),
    ],
)
def test_malformed_executions_name_the_field(record: object, complaint: str) -> None:
    with pytest.raises(MalformedExecutionError, match=complaint):
        parse_execution(record)
