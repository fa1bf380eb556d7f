"""The commands that go through the Raft log, and their one canonical text form.

A command travels as canonical JSON (sorted keys, no spaces): that string is what the leader
proposes, what every replica applies, what the journal stores and what a replay reads back.
The HTTP layer and the state machine validate with the same `parse_command`, so a command that
got into the log is one the state machine understands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from targets.reference.engine.orderbook import Side


class CommandError(ValueError):
    """A command that is not well formed; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class NewOrder:
    client_order_id: str
    account: str
    symbol: str
    side: Side
    price: int
    quantity: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_order_id: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class MarkPublished:
    """Executions up to `seq` are confirmed delivered to Kafka; proposed by the leader only."""

    seq: int


Command = NewOrder | CancelOrder | MarkPublished

# Commands a client may send to POST /commands; mark_published comes from the publisher only.
CLIENT_COMMAND_TYPES = ("new", "cancel")


# One encoder for every call: json.dumps with any option builds a new JSONEncoder each time,
# and canonical_json runs several times per order on every replica (state digests).
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: object) -> str:
    return _CANONICAL_ENCODER.encode(value)


def encode(command: Command) -> str:
    match command:
        case NewOrder():
            fields: dict[str, object] = {
                "type": "new",
                "client_order_id": command.client_order_id,
                "account": command.account,
                "symbol": command.symbol,
                "side": str(command.side),
                "price": command.price,
                "quantity": command.quantity,
                "ts_ns": command.ts_ns,
            }
        case CancelOrder():
            fields = {
                "type": "cancel",
                "client_order_id": command.client_order_id,
                "ts_ns": command.ts_ns,
            }
        case MarkPublished():
            fields = {"type": "mark_published", "seq": command.seq}
    return canonical_json(fields)


def decode(text: str) -> Command:
    try:
        body = json.loads(text)
    except ValueError as error:
        raise CommandError(f"not JSON: {error}") from error
    return parse_command(body)


def parse_command(body: object) -> Command:
    if not isinstance(body, dict):
        raise CommandError("a command is a JSON object")
    kind = body.get("type")
    if kind == "new":
        return NewOrder(
            client_order_id=_text(body, "client_order_id"),
            account=_text(body, "account"),
            symbol=_text(body, "symbol"),
            side=_side(body),
            price=_positive_int(body, "price"),
            quantity=_positive_int(body, "quantity"),
            ts_ns=_int(body, "ts_ns"),
        )
    if kind == "cancel":
        return CancelOrder(
            client_order_id=_text(body, "client_order_id"), ts_ns=_int(body, "ts_ns")
        )
    if kind == "mark_published":
        return MarkPublished(seq=_int(body, "seq"))
    raise CommandError(f"type: expected one of new, cancel, mark_published, got {kind!r}")


def parse_client_request(body: object) -> Command:
    """A POST /commands body: a new or cancel command whose `ts_ns` the leader fills in later.

    A `ts_ns` sent by the client is ignored: the leader's clock is the only time source.
    """
    if not isinstance(body, dict):
        raise CommandError("the request body is a JSON object")
    if body.get("type") not in CLIENT_COMMAND_TYPES:
        raise CommandError(f"type: expected one of new, cancel, got {body.get('type')!r}")
    return parse_command({**body, "ts_ns": 0})


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise CommandError(f"{field}: expected a non-empty string, got {value!r}")
    return value


def _int(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    # bool is an int in Python; `true` is never a valid price or quantity.
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandError(f"{field}: expected an integer, got {value!r}")
    return value


def _positive_int(body: dict[str, Any], field: str) -> int:
    value = _int(body, field)
    if value <= 0:
        raise CommandError(f"{field}: expected a positive integer, got {value}")
    return value


def _side(body: dict[str, Any]) -> Side:
    value = body.get("side")
    if value not in (Side.BUY.value, Side.SELL.value):
        raise CommandError(f"side: expected 'buy' or 'sell', got {value!r}")
    return Side(str(value))
