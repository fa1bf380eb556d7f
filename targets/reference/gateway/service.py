"""What the gateway answers to each request; HTTP parsing and serving live in http_api.

Status codes (PROTOCOL.md, "Gateway"):
    200 acked      the engine committed and applied the command
    422 rejected   risk limits or a malformed request; never reached an engine
    503 no_leader  not sent to any engine; retrying is safe
    504 unknown    sent, and no answer says what became of it; resubmitting the same
                   client_order_id is safe because the engine deduplicates
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import quote

from targets.reference.gateway.engine_client import (
    EngineNode,
    EngineReply,
    EngineUnavailableError,
    OutcomeUnknownError,
)
from targets.reference.gateway.idempotency import IdempotencyCache, RequestKind
from targets.reference.gateway.orders import (
    BadRequestError,
    cancel_command,
    client_order_id_of,
    parse_new_order,
    validate_client_order_id,
)
from targets.reference.gateway.reference_prices import ReferencePrices
from targets.reference.gateway.risk import RejectReason, RiskLimits, check_order, ticks_to_price


class Engine(Protocol):
    """The part of EngineClient the service uses; tests substitute a fake."""

    def known_leader(self) -> EngineNode | None: ...

    def discover_leader(self) -> EngineNode | None: ...

    def send_command(self, command: Mapping[str, object]) -> EngineReply: ...

    def read(self, path: str) -> EngineReply: ...


@dataclass(frozen=True)
class Answer:
    http_status: int
    body: bytes

    @classmethod
    def of(cls, http_status: int, payload: Mapping[str, object]) -> Answer:
        return cls(http_status, json.dumps(payload, separators=(",", ":")).encode())


def rejected(reason: RejectReason, detail: str) -> Answer:
    return Answer.of(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        {"status": "rejected", "reason": reason.value, "detail": detail},
    )


def bad_request(detail: str) -> Answer:
    return rejected(RejectReason.BAD_REQUEST, detail)


def not_found(detail: str) -> Answer:
    return Answer.of(
        HTTPStatus.NOT_FOUND, {"status": "error", "reason": "not_found", "detail": detail}
    )


class GatewayService:
    def __init__(
        self,
        engine: Engine,
        limits: RiskLimits,
        references: ReferencePrices | None = None,
        cache: IdempotencyCache[Answer] | None = None,
    ) -> None:
        self._engine = engine
        self._limits = limits
        self._references = references or ReferencePrices()
        self._cache: IdempotencyCache[Answer] = cache or IdempotencyCache()

    def submit_order(self, raw_body: bytes) -> Answer:
        try:
            body = json.loads(raw_body)
            client_order_id = client_order_id_of(body)
        except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
            return bad_request(f"the body is not JSON: {error}")
        except BadRequestError as error:
            return bad_request(str(error))
        cached = self._cache.lookup(RequestKind.NEW_ORDER, client_order_id)
        if cached is not None:
            return cached
        try:
            order = parse_new_order(body)
        except BadRequestError as error:
            return bad_request(str(error))
        reference = self._references.reference_ticks(order.symbol)
        reject = check_order(order.price_ticks, order.quantity, self._limits, reference)
        if reject is not None:
            answer = rejected(reject.reason, reject.detail)
            self._cache.remember_final(RequestKind.NEW_ORDER, client_order_id, answer)
            return answer
        self._references.remember_first_seen(order.symbol, order.price_ticks)
        return self._forward(RequestKind.NEW_ORDER, client_order_id, order.engine_command())

    def cancel_order(self, client_order_id: str) -> Answer:
        try:
            validate_client_order_id(client_order_id)
        except BadRequestError as error:
            return bad_request(str(error))
        cached = self._cache.lookup(RequestKind.CANCEL, client_order_id)
        if cached is not None:
            return cached
        return self._forward(RequestKind.CANCEL, client_order_id, cancel_command(client_order_id))

    def get_order(self, client_order_id: str) -> Answer:
        try:
            validate_client_order_id(client_order_id)
            reply = self._engine.read(f"/orders/{quote(client_order_id, safe='')}")
        except BadRequestError as error:
            return bad_request(str(error))
        except EngineUnavailableError as error:
            return _no_leader(str(error))
        if reply.http_status == HTTPStatus.NOT_FOUND:
            return not_found(f"no order {client_order_id!r}")
        if reply.http_status != HTTPStatus.OK:
            return Answer.of(
                HTTPStatus.BAD_GATEWAY,
                {"status": "error", "reason": "engine_error", "detail": _engine_said(reply)},
            )
        return Answer.of(HTTPStatus.OK, _record_with_price_text(reply.body))

    def health(self) -> Answer:
        leader = self._engine.known_leader() or self._engine.discover_leader()
        return Answer.of(HTTPStatus.OK, {"leader": leader.node_id if leader else None})

    def _forward(
        self, kind: RequestKind, client_order_id: str, command: Mapping[str, object]
    ) -> Answer:
        try:
            reply = self._engine.send_command(command)
        except EngineUnavailableError as error:
            return _no_leader(str(error))
        except OutcomeUnknownError as error:
            return _unknown(str(error))
        answer = self._answer_for(reply)
        if answer.http_status == HTTPStatus.OK and _is_final(kind, reply):
            self._cache.remember_final(kind, client_order_id, answer)
        return answer

    def _answer_for(self, reply: EngineReply) -> Answer:
        if reply.http_status == HTTPStatus.OK:
            result = reply.body.get("result")
            if not isinstance(result, Mapping):
                # Committed, but what happened cannot be told from this answer.
                return _unknown(f"engine {reply.node_id} acked without a readable result")
            self._record_trades(result.get("executions"))
            return Answer.of(HTTPStatus.OK, _acked_body(result))
        if HTTPStatus.BAD_REQUEST <= reply.http_status < HTTPStatus.INTERNAL_SERVER_ERROR:
            # The engine refused to propose the command at all.
            return bad_request(_engine_said(reply))
        # 504 is the engine's own "unknown"; any other server error may have come after the
        # proposal, so it is unknown as well.
        return _unknown(_engine_said(reply))

    def _record_trades(self, executions: object) -> None:
        if not isinstance(executions, list):
            return
        for execution in executions:
            if not isinstance(execution, Mapping):
                continue
            symbol, seq, price = (
                execution.get("symbol"),
                execution.get("seq"),
                execution.get("price"),
            )
            if isinstance(symbol, str) and isinstance(seq, int) and isinstance(price, int):
                self._references.record_trade(symbol, seq, price)


def _is_final(kind: RequestKind, reply: EngineReply) -> bool:
    """Whether a later identical request must get the same answer.

    A cancel that found no order ("unknown_order") is not: the order may still arrive (its
    `new` may be the one whose outcome was unknown), and a cancel sent then must reach it.
    """
    if kind is RequestKind.CANCEL:
        result = reply.body.get("result")
        return isinstance(result, Mapping) and isinstance(result.get("order"), Mapping)
    return True


def _acked_body(result: Mapping[str, object]) -> dict[str, object]:
    if "order" not in result and "client_order_id" in result:
        # The engine may answer with the bare order record.
        return {"status": "acked", "order": _record_with_price_text(result), "executions": []}
    body: dict[str, object] = {"status": "acked", "executions": []}
    for key, value in result.items():
        if key == "order":
            body["order"] = _with_price_text(value)
        elif key == "executions" and isinstance(value, list):
            body["executions"] = [_with_price_text(execution) for execution in value]
        elif key != "status":
            body[key] = value
    return body


def _with_price_text(record: object) -> object:
    return _record_with_price_text(record) if isinstance(record, Mapping) else record


def _record_with_price_text(record: Mapping[str, object]) -> dict[str, object]:
    """Engine records carry prices in ticks; clients get decimal strings back."""
    price = record.get("price")
    if not isinstance(price, int) or isinstance(price, bool):
        return dict(record)
    return {**record, "price": ticks_to_price(price)}


def _engine_said(reply: EngineReply) -> str:
    reason = reply.body.get("reason") or reply.body.get("outcome") or reply.body
    return f"engine {reply.node_id} answered {reply.http_status}: {reason}"


def _no_leader(detail: str) -> Answer:
    return Answer.of(
        HTTPStatus.SERVICE_UNAVAILABLE, {"status": "error", "reason": "no_leader", "detail": detail}
    )


def _unknown(reason: str) -> Answer:
    return Answer.of(HTTPStatus.GATEWAY_TIMEOUT, {"status": "unknown", "reason": reason})
