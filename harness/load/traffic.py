"""What a request is, apart from how it is sent and recorded.

The worker (`worker.py`) owns the schedule, the connections, the clock and the records; a
`Traffic` owns the content: for each slot it is asked for the next request of one sender, and
told that request's reply so it can say what the reply means and remember what it needs
(the order flow keeps each sender's resting orders to cancel later). A load profile for
another API is another `Traffic`.

Under gevent, `next_request` runs without yielding as soon as a sender claims its slot, so the
n-th draw of a seeded traffic is the same whichever sender claims the n-th slot.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Protocol

from harness.load.orderflow import RESTING_STATUSES, OrderFlow, client_order_id, outcome_of
from harness.records import Outcome

MAX_RESTING_PER_SENDER = 1000  # cancel candidates kept per sender; older ones are forgotten


@dataclass(frozen=True, slots=True)
class Request:
    kind: str  # recorded as the record's kind ("new", "cancel")
    request_id: str  # recorded as its client_order_id
    path: str
    body: bytes  # JSON for the order flow
    method: str = "POST"
    headers: bytes | None = None  # whole header lines; None: the order flow's JSON POST


@dataclass(frozen=True, slots=True)
class ReplyMeaning:
    outcome: Outcome
    reason: str = ""
    fills: int = 0


class Traffic(Protocol):
    def next_request(self, sender: int, slot: int = 0) -> Request:
        """`slot`: the request's index in the run's schedule (unique within one load)."""
        ...

    def reply(self, sender: int, request: Request, status: int | None, body: bytes) -> ReplyMeaning:
        """`status` None: no reply at all (the body is then the error's text)."""
        ...


@dataclass(frozen=True, slots=True)
class OrderTrafficOptions:
    symbols: tuple[str, ...]
    accounts: int
    mid_price: float
    cancel_ratio: float
    seed: int
    id_prefix: str


class _Sender:
    __slots__ = ("random", "resting", "sequence")

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.sequence = 0
        self.resting: list[str] = []


class OrderTraffic:
    """New limit orders from `OrderFlow`, and cancels of the sender's own resting orders."""

    def __init__(self, options: OrderTrafficOptions) -> None:
        self.options = options
        self.flow = OrderFlow(
            options.symbols,
            options.accounts,
            options.mid_price,
            options.seed,
            cancel_ratio=options.cancel_ratio,
        )
        self._senders: dict[int, _Sender] = {}

    def _sender(self, sender: int) -> _Sender:
        state = self._senders.get(sender)
        if state is None:
            state = self._senders[sender] = _Sender(self.options.seed * 1_000_003 + sender)
        return state

    def next_request(self, sender: int, slot: int = 0) -> Request:
        state = self._sender(sender)
        step = self.flow.next()
        if step.cancel and state.resting:
            target = state.resting.pop(state.random.randrange(len(state.resting)))
            return Request("cancel", target, f"/orders/{target}/cancel", b"{}")
        state.sequence += 1
        order_id = client_order_id(self.options.id_prefix, sender, state.sequence)
        body = json.dumps(step.order.body(order_id), separators=(",", ":")).encode()
        return Request("new", order_id, "/orders", body)

    def reply(self, sender: int, request: Request, status: int | None, body: bytes) -> ReplyMeaning:
        outcome = outcome_of(status)
        if status is None:
            return ReplyMeaning(outcome, body.decode(errors="replace")[:200])
        reply = json_object(body)
        if outcome is not Outcome.ACKED:
            return ReplyMeaning(outcome, str(reply.get("reason", ""))[:200])
        executions = reply.get("executions")
        order = reply.get("order")
        resting_now = isinstance(order, dict) and order.get("status", "new") in RESTING_STATUSES
        if request.kind == "new" and resting_now:
            resting = self._sender(sender).resting
            resting.append(request.request_id)
            if len(resting) > MAX_RESTING_PER_SENDER:
                del resting[0]
        return ReplyMeaning(outcome, fills=len(executions) if isinstance(executions, list) else 0)


def json_object(content: bytes) -> dict[str, Any]:
    if not content:
        return {}
    try:
        parsed = json.loads(content)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
