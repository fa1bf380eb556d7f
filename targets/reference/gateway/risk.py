"""Pre-trade risk checks: pure functions over one order, the limits and a reference price.

Behind the gateway every price is an integer number of ticks (0.01). Parsing goes through the
exact digits of a `Decimal`, never through float arithmetic or a rounding context, so `"101.25"`
and `101.25` both become exactly 10125 and `"101.255"` is refused instead of silently rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

TICKS_PER_UNIT = 100
TICK_DIGITS = 2
# Larger prices are certainly typing errors, and capping them keeps 10**exponent cheap.
MAX_PRICE_DIGITS_BEFORE_POINT = 12


class RejectReason(StrEnum):
    MAX_QUANTITY = "max_quantity"
    MAX_NOTIONAL = "max_notional"
    PRICE_BAND = "price_band"
    BAD_REQUEST = "bad_request"


@dataclass(frozen=True)
class Reject:
    reason: RejectReason
    detail: str


class PriceError(ValueError):
    """A price that is not a positive multiple of the tick; the message is for a person."""


@dataclass(frozen=True)
class RiskLimits:
    max_quantity: int
    max_notional_ticks: int
    price_band_pct: Decimal


def parse_price_ticks(value: object) -> int:
    """Turn `"101.25"`, `101.25` or `101` (currency units) into ticks, exactly or not at all."""
    price = _to_decimal(value)
    if not price.is_finite():
        raise PriceError(f"price {value!r} is not a finite number")
    if price <= 0:
        raise PriceError(f"price {value!r} must be positive")
    if price.adjusted() >= MAX_PRICE_DIGITS_BEFORE_POINT:
        raise PriceError(f"price {value!r} is implausibly large")
    _sign, digit_tuple, exponent = price.as_tuple()
    assert isinstance(exponent, int)  # finite decimals always have an integer exponent
    digits = list(digit_tuple)
    # "101.2500" is a multiple of the tick; only non-zero digits past the tick matter.
    while exponent < -TICK_DIGITS and digits and digits[-1] == 0:
        digits.pop()
        exponent += 1
    if exponent < -TICK_DIGITS:
        raise PriceError(f"price {value!r} is not a multiple of the tick size 0.01")
    coefficient = int("".join(map(str, digits)) or "0")
    ticks: int = coefficient * 10 ** (exponent + TICK_DIGITS)
    return ticks


def ticks_to_price(ticks: int) -> str:
    """The wire form of a price: 10125 -> "101.25", 10000 -> "100.00"."""
    return str(Decimal(ticks).scaleb(-TICK_DIGITS))


def check_order(
    price_ticks: int, quantity: int, limits: RiskLimits, reference_ticks: int | None
) -> Reject | None:
    """The first limit the order breaks, or None. `reference_ticks` None means no band yet."""
    if quantity > limits.max_quantity:
        return Reject(
            RejectReason.MAX_QUANTITY,
            f"quantity {quantity} exceeds the maximum {limits.max_quantity}",
        )
    notional_ticks = price_ticks * quantity
    if notional_ticks > limits.max_notional_ticks:
        return Reject(
            RejectReason.MAX_NOTIONAL,
            f"notional {ticks_to_price(notional_ticks)} exceeds the maximum "
            f"{ticks_to_price(limits.max_notional_ticks)}",
        )
    if reference_ticks is not None and _outside_band(price_ticks, reference_ticks, limits):
        distance_pct = Decimal(abs(price_ticks - reference_ticks) * 100) / reference_ticks
        return Reject(
            RejectReason.PRICE_BAND,
            f"price {ticks_to_price(price_ticks)} is {distance_pct:.2f}% away from the "
            f"reference {ticks_to_price(reference_ticks)}; the band is "
            f"{limits.price_band_pct}%",
        )
    return None


def _outside_band(price_ticks: int, reference_ticks: int, limits: RiskLimits) -> bool:
    # Exactly on the band edge is allowed: the rule is "more than N% away".
    return Decimal(abs(price_ticks - reference_ticks) * 100) > reference_ticks * (
        limits.price_band_pct
    )


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):  # bool is an int subclass; true is not a price
        raise PriceError(f"price {value!r} is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr is the shortest string that round-trips, so 101.25 reads as "101.25", not as
        # the binary expansion; 0.1 + 0.2 stays 0.30000000000000004 and is refused.
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise PriceError(f"price {value!r} is not a decimal number") from None
    raise PriceError(f"price must be a decimal string or a number, not {type(value).__name__}")
