"""What the load sends: limit orders around a slowly moving mid price, and how a reply reads.

Deterministic for a seed: the n-th step is the same whichever sender ends up sending it.
Prices are integer ticks of 0.01 and are sent as decimal strings ("101.25"), as PROTOCOL.md
allows, so no float rounding reaches the gateway.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.records import Outcome

TICKS_PER_UNIT = 100
OUTCOME_BY_STATUS = {
    200: Outcome.ACKED,
    422: Outcome.REJECTED,
    503: Outcome.ERROR,
    504: Outcome.UNKNOWN,
}
RESTING_STATUSES = ("new", "partially_filled")

Side = Literal["buy", "sell"]


def outcome_of(http_status: int | None) -> Outcome:
    """No answer at all (connection lost, timeout) means the order may or may not exist."""
    if http_status is None:
        return Outcome.UNKNOWN
    return OUTCOME_BY_STATUS.get(http_status, Outcome.ERROR)


def format_price(ticks: int) -> str:
    return f"{ticks // TICKS_PER_UNIT}.{ticks % TICKS_PER_UNIT:02d}"


def client_order_id(id_prefix: str, user: int, sequence: int) -> str:
    """Unique per run as long as the prefix is: one sequence per sender."""
    return f"{id_prefix}-{user}-{sequence}"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    account: str
    symbol: str
    side: Side
    price_ticks: int
    quantity: int
    crossing: bool  # priced through the mid, so it trades against resting orders if any
    mid_ticks: int  # the mid it was priced against

    @property
    def price(self) -> str:
        return format_price(self.price_ticks)

    def body(self, client_order_id: str) -> dict[str, object]:
        return {
            "client_order_id": client_order_id,
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side,
            "price": self.price,
            "quantity": self.quantity,
        }


@dataclass(frozen=True, slots=True)
class FlowStep:
    cancel: bool  # spend this slot cancelling one of the sender's resting orders, if it has one
    order: OrderIntent  # sent when not cancelling (or when there is nothing to cancel)


class OrderFlow:
    """A seeded stream of steps.

    The mid of each symbol walks one tick at a time with probability `walk_probability` per
    step, reflected at +-`band_pct` of where it started so orders stay inside the gateway's
    price band (10% by default). Passive orders rest 1..`passive_ticks` away from the mid;
    a `cross_ratio` share of orders are priced at or through it (buys at/above, sells
    at/below, up to `cross_ticks`) so they meet resting orders and trade.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        accounts: int,
        mid_price: float,
        seed: int,
        cancel_ratio: float = 0.0,
        cross_ratio: float = 0.25,
        passive_ticks: int = 5,
        cross_ticks: int = 2,
        walk_probability: float = 0.2,
        band_pct: float = 5.0,
    ) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        if accounts < 1:
            raise ValueError("at least one account is needed")
        self._random = random.Random(seed)
        self._symbols = list(symbols)
        self._accounts = accounts
        self._cancel_ratio = cancel_ratio
        self._cross_ratio = cross_ratio
        self._passive_ticks = max(1, passive_ticks)
        self._cross_ticks = max(0, cross_ticks)
        self._walk_probability = walk_probability
        start = max(1, round(mid_price * TICKS_PER_UNIT))
        band = int(start * band_pct / 100)
        self._low, self._high = max(1, start - band), start + band
        self._mids = dict.fromkeys(self._symbols, start)

    def mid_ticks(self, symbol: str) -> int:
        return self._mids[symbol]

    def next(self) -> FlowStep:
        rng = self._random
        cancel = rng.random() < self._cancel_ratio
        symbol = rng.choice(self._symbols)
        mid = self._walk(symbol)
        side: Side = "buy" if rng.random() < 0.5 else "sell"
        crossing = rng.random() < self._cross_ratio
        if crossing:
            offset = rng.randint(0, self._cross_ticks)
            price = mid + offset if side == "buy" else mid - offset
        else:
            offset = rng.randint(1, self._passive_ticks)
            price = mid - offset if side == "buy" else mid + offset
        order = OrderIntent(
            account=f"acct-{rng.randint(1, self._accounts)}",
            symbol=symbol,
            side=side,
            price_ticks=max(1, price),
            quantity=rng.randint(1, 10),
            crossing=crossing,
            mid_ticks=mid,
        )
        return FlowStep(cancel, order)

    def _walk(self, symbol: str) -> int:
        rng = self._random
        mid = self._mids[symbol]
        if rng.random() < self._walk_probability:
            step = 1 if rng.random() < 0.5 else -1
            if not self._low <= mid + step <= self._high:
                step = -step
            mid = min(self._high, max(self._low, mid + step))
            self._mids[symbol] = mid
        return mid
