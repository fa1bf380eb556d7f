from decimal import Decimal

import pytest

from targets.reference.gateway.orders import BadRequestError, Side, parse_new_order
from targets.reference.gateway.reference_prices import ReferencePrices
from targets.reference.gateway.risk import (
    PriceError,
    RejectReason,
    RiskLimits,
    check_order,
    parse_price_ticks,
    ticks_to_price,
)

LIMITS = RiskLimits(max_quantity=100, max_notional_ticks=1_000_000, price_band_pct=Decimal(10))


@pytest.mark.parametrize(
    ("price", "ticks"),
    [
        ("101.25", 10125),
        (" 101.25 ", 10125),
        ("101.2500", 10125),
        ("101", 10100),
        ("0.01", 1),
        ("1e2", 10000),
        (101.25, 10125),
        (101, 10100),
        (0.07, 7),
        (99999.99, 9999999),
    ],
)
def test_prices_become_exact_ticks(price: object, ticks: int) -> None:
    assert parse_price_ticks(price) == ticks


@pytest.mark.parametrize(
    ("price", "complaint"),
    [
        ("101.255", "multiple of the tick"),
        ("0.001", "multiple of the tick"),
        (0.1 + 0.2, "multiple of the tick"),
        ("1.0000000000000000000000000000001", "multiple of the tick"),
        ("0", "positive"),
        ("-5.00", "positive"),
        ("abc", "not a decimal"),
        ("", "not a decimal"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        (float("inf"), "finite"),
        ("1e400", "implausibly large"),
        (True, "not a number"),
        (None, "not NoneType"),
        ([101], "not list"),
    ],
)
def test_bad_prices_are_refused_with_a_reason(price: object, complaint: str) -> None:
    with pytest.raises(PriceError, match=complaint):
        parse_price_ticks(price)


@pytest.mark.parametrize(("ticks", "text"), [(10125, "101.25"), (10000, "100.00"), (1, "0.01")])
def test_ticks_print_as_decimal_strings(ticks: int, text: str) -> None:
    assert ticks_to_price(ticks) == text
    assert parse_price_ticks(text) == ticks


def test_order_within_all_limits_passes() -> None:
    assert check_order(10000, 100, LIMITS, reference_ticks=10000) is None


def test_quantity_above_maximum_is_rejected() -> None:
    reject = check_order(100, 101, LIMITS, reference_ticks=None)
    assert reject is not None
    assert reject.reason is RejectReason.MAX_QUANTITY
    assert "101" in reject.detail and "100" in reject.detail


def test_notional_is_price_times_quantity_in_ticks() -> None:
    assert check_order(10000, 100, LIMITS, None) is None  # exactly 10000.00
    reject = check_order(10001, 100, LIMITS, None)
    assert reject is not None
    assert reject.reason is RejectReason.MAX_NOTIONAL
    assert "10000.00" in reject.detail


def test_price_band_edges_are_inclusive() -> None:
    assert check_order(11000, 1, LIMITS, reference_ticks=10000) is None
    assert check_order(9000, 1, LIMITS, reference_ticks=10000) is None
    above = check_order(11001, 1, LIMITS, reference_ticks=10000)
    below = check_order(8999, 1, LIMITS, reference_ticks=10000)
    assert above is not None and above.reason is RejectReason.PRICE_BAND
    assert below is not None and below.reason is RejectReason.PRICE_BAND
    assert "100.00" in above.detail and "110.01" in above.detail


def test_without_reference_there_is_no_band() -> None:
    assert check_order(1, 1, LIMITS, reference_ticks=None) is None


def test_quantity_is_checked_before_notional_and_band() -> None:
    reject = check_order(10**9, 10**6, LIMITS, reference_ticks=1)
    assert reject is not None and reject.reason is RejectReason.MAX_QUANTITY


def test_reference_is_first_seen_price_until_a_trade() -> None:
    references = ReferencePrices()
    assert references.reference_ticks("ACME") is None
    references.remember_first_seen("ACME", 10000)
    references.remember_first_seen("ACME", 20000)
    assert references.reference_ticks("ACME") == 10000
    references.record_trade("ACME", seq=5, price_ticks=10500)
    assert references.reference_ticks("ACME") == 10500
    references.record_trade("ACME", seq=4, price_ticks=9000)  # a reply processed late
    assert references.reference_ticks("ACME") == 10500
    assert references.reference_ticks("OTHER") is None


VALID_ORDER = {
    "client_order_id": "c-1",
    "account": "acct-1",
    "symbol": "ACME",
    "side": "buy",
    "price": "101.25",
    "quantity": 10,
}


def test_a_valid_request_becomes_an_engine_command_in_ticks() -> None:
    order = parse_new_order(VALID_ORDER)
    assert order.side is Side.BUY
    assert order.engine_command() == {
        "type": "new",
        "client_order_id": "c-1",
        "account": "acct-1",
        "symbol": "ACME",
        "side": "buy",
        "price": 10125,
        "quantity": 10,
    }


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("client_order_id", "", "client_order_id"),
        ("client_order_id", "a/b", "client_order_id"),
        ("client_order_id", 7, "client_order_id"),
        ("account", "", "account"),
        ("symbol", None, "symbol"),
        ("side", "hold", "side"),
        ("price", "1.001", "tick"),
        ("quantity", 0, "quantity"),
        ("quantity", 1.5, "quantity"),
        ("quantity", True, "quantity"),
        ("quantity", "10", "quantity"),
    ],
)
def test_malformed_requests_name_the_field(field: str, value: object, complaint: str) -> None:
    with pytest.raises(BadRequestError, match=complaint):
        parse_new_order({**VALID_ORDER, field: value})


def test_a_body_that_is_not_an_object_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="JSON object"):
        parse_new_order([VALID_ORDER])
