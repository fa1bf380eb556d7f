"""The cache on its own, then the service's use of it with a fake engine that counts calls."""

import json
from collections.abc import Mapping
from decimal import Decimal

import pytest

from targets.reference.gateway.engine_client import (
    EngineNode,
    EngineReply,
    EngineUnavailableError,
    OutcomeUnknownError,
)
from targets.reference.gateway.idempotency import IdempotencyCache, RequestKind
from targets.reference.gateway.risk import RiskLimits
from targets.reference.gateway.service import Answer, GatewayService

LIMITS = RiskLimits(max_quantity=100, max_notional_ticks=10**9, price_band_pct=Decimal(10))
LEADER = EngineNode("n1", "127.0.0.1", 1)


def test_unknown_ids_are_not_in_the_cache() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache()
    assert cache.lookup(RequestKind.NEW_ORDER, "c-1") is None


def test_remembered_answer_is_returned_per_kind() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache()
    cache.remember_final(RequestKind.NEW_ORDER, "c-1", "acked")
    assert cache.lookup(RequestKind.NEW_ORDER, "c-1") == "acked"
    assert cache.lookup(RequestKind.CANCEL, "c-1") is None


def test_first_final_answer_wins() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache()
    cache.remember_final(RequestKind.NEW_ORDER, "c-1", "original")
    cache.remember_final(RequestKind.NEW_ORDER, "c-1", "duplicate echo")
    assert cache.lookup(RequestKind.NEW_ORDER, "c-1") == "original"


def test_oldest_ids_are_forgotten_beyond_the_bound() -> None:
    cache: IdempotencyCache[int] = IdempotencyCache(max_entries=2)
    for number in range(3):
        cache.remember_final(RequestKind.NEW_ORDER, f"c-{number}", number)
    assert len(cache) == 2
    assert cache.lookup(RequestKind.NEW_ORDER, "c-0") is None
    assert cache.lookup(RequestKind.NEW_ORDER, "c-2") == 2


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        IdempotencyCache[int](max_entries=0)


class CountingEngine:
    """Answers every command with the next scripted outcome and counts the commands."""

    def __init__(self, outcomes: list[EngineReply | Exception]) -> None:
        self.outcomes = outcomes
        self.commands: list[Mapping[str, object]] = []

    def known_leader(self) -> EngineNode | None:
        return LEADER

    def discover_leader(self) -> EngineNode | None:
        return LEADER

    def send_command(self, command: Mapping[str, object]) -> EngineReply:
        self.commands.append(command)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def read(self, path: str) -> EngineReply:
        raise AssertionError("not used")


def acked(price: int = 10125) -> EngineReply:
    order = {"client_order_id": "c-1", "symbol": "ACME", "price": price, "status": "new"}
    return EngineReply(
        200, {"outcome": "acked", "result": {"order": order, "executions": []}}, "n1"
    )


def order_body(client_order_id: str = "c-1", **changes: object) -> bytes:
    body = {
        "client_order_id": client_order_id,
        "account": "acct-1",
        "symbol": "ACME",
        "side": "buy",
        "price": "101.25",
        "quantity": 10,
    }
    return json.dumps({**body, **changes}).encode()


def payload(answer: Answer) -> dict[str, object]:
    decoded = json.loads(answer.body)
    assert isinstance(decoded, dict)
    return decoded


def test_resubmitted_acked_order_is_answered_without_the_engine() -> None:
    engine = CountingEngine([acked()])
    service = GatewayService(engine, LIMITS)
    first = service.submit_order(order_body())
    again = service.submit_order(order_body(price="999.00"))  # same id wins over new content
    assert first.http_status == 200
    assert payload(first)["order"] == {
        "client_order_id": "c-1",
        "symbol": "ACME",
        "price": "101.25",
        "status": "new",
    }
    assert again == first
    assert len(engine.commands) == 1
    assert engine.commands[0]["price"] == 10125


def test_resubmitted_risk_reject_is_answered_the_same() -> None:
    engine = CountingEngine([])
    service = GatewayService(engine, LIMITS)
    first = service.submit_order(order_body(quantity=1000))
    again = service.submit_order(order_body(quantity=1))
    assert first.http_status == 422
    assert payload(first)["reason"] == "max_quantity"
    assert again == first
    assert engine.commands == []


def test_malformed_request_is_not_remembered() -> None:
    engine = CountingEngine([acked()])
    service = GatewayService(engine, LIMITS)
    assert service.submit_order(order_body(side="hold")).http_status == 422
    assert service.submit_order(order_body()).http_status == 200
    assert len(engine.commands) == 1


def test_unknown_outcome_is_forwarded_again_on_resubmission() -> None:
    engine = CountingEngine([OutcomeUnknownError("connection reset"), acked()])
    service = GatewayService(engine, LIMITS)
    first = service.submit_order(order_body())
    assert first.http_status == 504
    assert payload(first) == {"status": "unknown", "reason": "connection reset"}
    assert service.submit_order(order_body()).http_status == 200
    assert len(engine.commands) == 2


def test_engine_504_is_unknown_and_forwarded_again() -> None:
    timeout = EngineReply(504, {"outcome": "unknown", "reason": "commit timeout"}, "n1")
    engine = CountingEngine([timeout, acked()])
    service = GatewayService(engine, LIMITS)
    first = service.submit_order(order_body())
    assert first.http_status == 504
    assert "commit timeout" in str(payload(first)["reason"])
    assert service.submit_order(order_body()).http_status == 200


def test_no_leader_is_503_and_forwarded_again() -> None:
    engine = CountingEngine([EngineUnavailableError("no engine reported a leader"), acked()])
    service = GatewayService(engine, LIMITS)
    first = service.submit_order(order_body())
    assert first.http_status == 503
    assert payload(first)["reason"] == "no_leader"
    assert service.submit_order(order_body()).http_status == 200


def test_cancel_answers_are_cached_apart_from_the_order() -> None:
    cancelled = EngineReply(
        200,
        {"outcome": "acked", "result": {"order": {"client_order_id": "c-1", "price": 10125}}},
        "n1",
    )
    engine = CountingEngine([acked(), cancelled])
    service = GatewayService(engine, LIMITS)
    service.submit_order(order_body())
    first_cancel = service.cancel_order("c-1")
    assert service.cancel_order("c-1") == first_cancel
    assert first_cancel.http_status == 200
    assert payload(first_cancel)["order"] == {"client_order_id": "c-1", "price": "101.25"}
    assert [command["type"] for command in engine.commands] == ["new", "cancel"]


def test_trades_move_the_price_band() -> None:
    trade = {"seq": 1, "symbol": "ACME", "price": 12000, "quantity": 1}
    traded = EngineReply(
        200, {"outcome": "acked", "result": {"order": {}, "executions": [trade]}}, "n1"
    )
    engine = CountingEngine([traded, acked()])
    service = GatewayService(engine, LIMITS)
    first = service.submit_order(order_body("c-1", price="120.00"))
    assert payload(first)["executions"] == [{**trade, "price": "120.00"}]
    # 101.25 was fine against the first price; against the trade at 120.00 it is 15% off.
    late = service.submit_order(order_body("c-2", price="101.25"))
    assert late.http_status == 422
    assert payload(late)["reason"] == "price_band"


def test_cancel_that_found_no_order_is_not_remembered() -> None:
    unknown_order = EngineReply(
        200,
        {
            "outcome": "acked",
            "result": {"order": None, "cancelled": False, "reason": "unknown_order"},
        },
        "n1",
    )
    engine = CountingEngine([unknown_order, unknown_order])
    service = GatewayService(engine, LIMITS)
    first = service.cancel_order("c-9")
    assert first.http_status == 200
    assert payload(first)["reason"] == "unknown_order"
    service.cancel_order("c-9")
    assert len(engine.commands) == 2


def test_body_that_is_not_json_is_a_bad_request() -> None:
    service = GatewayService(CountingEngine([]), LIMITS)
    for body in (b"", b"{", b"\xff", b"[" * 100_000):
        answer = service.submit_order(body)
        assert answer.http_status == 422
        assert payload(answer)["reason"] == "bad_request"
