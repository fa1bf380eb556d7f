"""Final answers per client_order_id, so a resubmission is answered without the engine.

Only final answers belong here: an ack, or a risk reject the gateway decided itself. An id whose
outcome is unknown (504) or that never reached an engine (503) is not stored, so its
resubmission is forwarded again; that is safe because the engine applies `new` at most once
per client_order_id. Malformed requests are not stored either: they never became an order.

The cache is bounded. Forgetting an old id costs only a round trip to the engine, which still
answers it correctly from its own deduplication.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from enum import StrEnum
from typing import Generic, TypeVar

DEFAULT_MAX_ENTRIES = 1_000_000


class RequestKind(StrEnum):
    NEW_ORDER = "new"
    CANCEL = "cancel"


AnswerT = TypeVar("AnswerT")


class IdempotencyCache(Generic[AnswerT]):
    """Thread-safe; the oldest ids are forgotten first once `max_entries` is reached."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._answers: OrderedDict[tuple[RequestKind, str], AnswerT] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, kind: RequestKind, client_order_id: str) -> AnswerT | None:
        with self._lock:
            return self._answers.get((kind, client_order_id))

    def remember_final(self, kind: RequestKind, client_order_id: str, answer: AnswerT) -> None:
        key = (kind, client_order_id)
        with self._lock:
            # The first final answer wins: a concurrent duplicate may have got the engine's
            # "duplicate" echo of the same result, and the original is what clients expect.
            if key in self._answers:
                return
            self._answers[key] = answer
            if len(self._answers) > self._max_entries:
                self._answers.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)
