"""The price each symbol's band is centred on: the last trade, or else the first price seen."""

from __future__ import annotations

import threading


class ReferencePrices:
    """Thread-safe; shared by all request threads of the gateway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first_seen_ticks: dict[str, int] = {}
        # (seq, price) so that replies processed out of order cannot move the reference back.
        self._last_trade: dict[str, tuple[int, int]] = {}

    def reference_ticks(self, symbol: str) -> int | None:
        with self._lock:
            trade = self._last_trade.get(symbol)
            if trade is not None:
                return trade[1]
            return self._first_seen_ticks.get(symbol)

    def remember_first_seen(self, symbol: str, price_ticks: int) -> None:
        with self._lock:
            self._first_seen_ticks.setdefault(symbol, price_ticks)

    def record_trade(self, symbol: str, seq: int, price_ticks: int) -> None:
        with self._lock:
            previous = self._last_trade.get(symbol)
            if previous is None or seq > previous[0]:
                self._last_trade[symbol] = (seq, price_ticks)
