"""A small order-entry client for the reference gateway's HTTP/JSON API (see PROTOCOL.md).

One persistent HTTP/1.1 connection per client; make one client per thread.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

OUTCOME_BY_STATUS = {200: "acked", 422: "rejected", 503: "error", 504: "unknown"}


@dataclass(frozen=True)
class OrderReply:
    outcome: str  # acked | rejected | error | unknown
    http_status: int | None
    body: dict[str, Any]
    start_ns: int
    end_ns: int

    @property
    def latency_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class GatewayClient:
    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port, self._timeout_s = host, int(port), timeout_s
        self._connection: http.client.HTTPConnection | None = None

    def new_order(
        self, client_order_id: str, account: str, symbol: str, side: str, price: str, quantity: int
    ) -> OrderReply:
        order = {
            "client_order_id": client_order_id,
            "account": account,
            "symbol": symbol,
            "side": side,
            "price": price,
            "quantity": quantity,
        }
        return self._call("POST", "/orders", order)

    def cancel(self, client_order_id: str) -> OrderReply:
        return self._call("POST", f"/orders/{client_order_id}/cancel", {})

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _call(self, method: str, path: str, body: dict[str, Any]) -> OrderReply:
        start_ns = time.monotonic_ns()
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._timeout_s
            )
        try:
            self._connection.request(
                method, path, json.dumps(body), {"Content-Type": "application/json"}
            )
            response = self._connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            # We cannot know whether the gateway received it: that is an unknown outcome.
            reply: dict[str, Any] = {"reason": f"{type(error).__name__}: {error}"}
            return OrderReply("unknown", None, reply, start_ns, time.monotonic_ns())
        try:
            parsed = json.loads(payload) if payload else {}
        except ValueError:
            parsed = {"raw": payload[:200].decode(errors="replace")}
        outcome = OUTCOME_BY_STATUS.get(response.status, "error")
        return OrderReply(outcome, response.status, parsed, start_ns, time.monotonic_ns())
