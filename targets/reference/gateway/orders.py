"""Client requests, validated once at the edge, and the engine commands they become."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from targets.reference.gateway.risk import PriceError, parse_price_ticks

# Ids travel in URL paths (/orders/<id>/cancel) to the gateway and on to the engine; a plain
# alphabet avoids every quoting question on the way.
CLIENT_ORDER_ID_PATTERN = re.compile(r"[A-Za-z0-9._:~-]{1,128}")
MAX_NAME_LENGTH = 64


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class BadRequestError(ValueError):
    """The request is malformed; the message says which field and what would be valid."""


@dataclass(frozen=True)
class NewOrder:
    client_order_id: str
    account: str
    symbol: str
    side: Side
    price_ticks: int
    quantity: int

    def engine_command(self) -> dict[str, object]:
        return {
            "type": "new",
            "client_order_id": self.client_order_id,
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side.value,
            "price": self.price_ticks,
            "quantity": self.quantity,
        }


def cancel_command(client_order_id: str) -> dict[str, object]:
    return {"type": "cancel", "client_order_id": client_order_id}


def validate_client_order_id(value: object) -> str:
    if not isinstance(value, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(value):
        raise BadRequestError(
            "client_order_id must be 1 to 128 characters of letters, digits and ._:~-"
        )
    return value


def client_order_id_of(body: object) -> str:
    """Only the id, so that a resubmission can be answered before the rest is looked at."""
    if not isinstance(body, Mapping):
        raise BadRequestError("the body must be a JSON object")
    return validate_client_order_id(body.get("client_order_id"))


def parse_new_order(body: object) -> NewOrder:
    if not isinstance(body, Mapping):
        raise BadRequestError("the body must be a JSON object")
    side = body.get("side")
    if side not in (Side.BUY.value, Side.SELL.value):
        raise BadRequestError(f"side must be 'buy' or 'sell', not {side!r}")
    try:
        price_ticks = parse_price_ticks(body.get("price"))
    except PriceError as error:
        raise BadRequestError(str(error)) from None
    return NewOrder(
        client_order_id=validate_client_order_id(body.get("client_order_id")),
        account=_name(body, "account"),
        symbol=_name(body, "symbol"),
        side=Side(side),
        price_ticks=price_ticks,
        quantity=_quantity(body.get("quantity")),
    )


def _name(body: Mapping[str, object], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH or value.isspace():
        raise BadRequestError(f"{field} must be a non-empty string of at most {MAX_NAME_LENGTH}")
    return value


def _quantity(value: object) -> int:
    # bool is an int subclass, and a float quantity would hide a rounding decision.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequestError(f"quantity must be a positive integer, not {value!r}")
    return value
