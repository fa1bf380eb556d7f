"""Commands from many request threads carried to an engine node as one POST per batch.

Per order, the gateway's costliest step was its own HTTP exchange with the leader (build the
request, parse the response, one engine handler thread woken), and the leader paid the same
again on its side: the order-path bench measured 445 us of gateway CPU and 561 us of leader CPU
per order at 1,000 orders/s. So request threads do not send: they queue their command for the
node and wait, and a few sender threads per node each take everything queued (within the
bounds) and send it as one JSON list. While their batches are in flight new commands wait for
the next one, so under load a batch grows by itself; with no load it holds one command and
waits for nothing (group commit, as the engine does with Raft entries).

Each command gets its own outcome back (`split` turns the batch's one exchange into one
outcome per command, in order): a batch never decides for a command what its own answer
does not say. Pure of HTTP: the exchange is a function given by the caller.

A queued command is not sent yet, so it can still be taken back, safely: when its caller's
deadline passes while every sender of the node is stuck (a link that swallows requests holds
each sender until its read timeout), and when the node stops being the leader (`withdraw`).
Either way the caller gets the "not sent" outcome and may retry elsewhere; a command a sender
has taken is never taken back, whatever happens to it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

# The engine's request body limit is 64 KiB; a batch stays well under it (a lone command larger
# than this still goes, alone).
MAX_BATCH_BYTES = 48 * 1024
# As many as the engine puts in one Raft entry.
MAX_BATCH_COMMANDS = 128
# Batches in flight to one node at once: one would leave the next batch waiting a whole round
# trip while the engine is idle; many would cut load into small batches again.
SENDERS_PER_NODE = 2

Node = TypeVar("Node", bound=Hashable)
Outcome = TypeVar("Outcome")


@dataclass(slots=True)
class _Queued(Generic[Outcome]):
    body: bytes
    done: threading.Lock = field(default_factory=threading.Lock)
    outcome: Outcome | None = None


class _NodeQueue(Generic[Outcome]):
    def __init__(self) -> None:
        self.items: deque[_Queued[Outcome]] = deque()
        self.ready = threading.Condition(threading.Lock())
        self.senders_started = False


class CommandBatches(Generic[Node, Outcome]):
    """Thread-safe. `send(node, bodies)` makes one exchange for a batch and returns exactly one
    outcome per body, in order; it must not raise. `on_crash(problem)` is every outcome of a
    batch whose `send` raised anyway: the batch may have left, so it must be an unknown."""

    def __init__(
        self,
        send: Callable[[Node, Sequence[bytes]], Sequence[Outcome]],
        on_crash: Callable[[str], Outcome],
        on_closed: Outcome,
        senders_per_node: int = SENDERS_PER_NODE,
        max_commands: int = MAX_BATCH_COMMANDS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        if senders_per_node < 1 or max_commands < 1 or max_bytes < 1:
            raise ValueError("a node needs a sender, and a batch room for one command")
        self._send = send
        self._on_crash = on_crash
        self._on_closed = on_closed
        self._senders_per_node = senders_per_node
        self._max_commands = max_commands
        self._max_bytes = max_bytes
        self._queues: dict[Node, _NodeQueue[Outcome]] = {}
        self._queues_lock = threading.Lock()
        self._closed = False

    def attempt(self, node: Node, body: bytes, deadline: float, not_sent: Outcome) -> Outcome:
        """Send `body` to `node` in the next batch; its own outcome once the batch is answered,
        or `not_sent` if no sender took it by `deadline` (time.monotonic())."""
        queue = self._queue_for(node)
        queued: _Queued[Outcome] = _Queued(body)
        queued.done.acquire()  # released by whoever gives it its outcome
        with queue.ready:
            if self._closed:
                return self._on_closed
            queue.items.append(queued)
            queue.ready.notify()
        if not queued.done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            with queue.ready:
                still_queued = _take_back(queue.items, queued)
            if still_queued:
                return not_sent
            queued.done.acquire()  # a sender has it: it gets the batch's answer
        assert queued.outcome is not None
        return queued.outcome

    def withdraw(self, node: Node, not_sent: Outcome) -> int:
        """Every command queued for `node` and not taken by a sender yet is answered
        `not_sent` (its caller may send it elsewhere); how many there were."""
        with self._queues_lock:
            queue = self._queues.get(node)
        if queue is None:
            return 0
        with queue.ready:
            taken, queue.items = list(queue.items), deque()
        _answer(taken, [not_sent] * len(taken))
        return len(taken)

    def close(self) -> None:
        """Senders stop; commands still queued (never sent) get `on_closed`."""
        with self._queues_lock:
            self._closed = True
            queues = list(self._queues.values())
        for queue in queues:
            with queue.ready:
                left, queue.items = list(queue.items), deque()
                queue.ready.notify_all()
            _answer(left, [self._on_closed] * len(left))

    def _queue_for(self, node: Node) -> _NodeQueue[Outcome]:
        with self._queues_lock:
            queue = self._queues.get(node)
            if queue is None:
                queue = self._queues[node] = _NodeQueue()
            if not queue.senders_started and not self._closed:
                queue.senders_started = True
                for number in range(self._senders_per_node):
                    threading.Thread(
                        target=self._sender,
                        args=(node, queue),
                        name=f"engine-batch-{node}-{number}",
                        daemon=True,
                    ).start()
        return queue

    def _sender(self, node: Node, queue: _NodeQueue[Outcome]) -> None:
        while True:
            with queue.ready:
                while not queue.items and not self._closed:
                    queue.ready.wait()
                if self._closed:
                    return
                batch = take_batch(queue.items, self._max_commands, self._max_bytes)
            try:
                outcomes = list(self._send(node, [item.body for item in batch]))
                if len(outcomes) != len(batch):
                    raise ValueError(f"{len(outcomes)} outcomes for {len(batch)} commands")
            except Exception as error:
                outcomes = [self._on_crash(f"sending a batch failed: {error!r}")] * len(batch)
            _answer(batch, outcomes)


def take_batch(
    items: deque[_Queued[Outcome]], max_commands: int, max_bytes: int
) -> list[_Queued[Outcome]]:
    """The oldest queued commands, in order, within the bounds (at least one, however large)."""
    batch = [items.popleft()]
    size = len(batch[0].body)
    while items and len(batch) < max_commands and size + len(items[0].body) + 1 <= max_bytes:
        item = items.popleft()
        size += len(item.body) + 1  # the comma between list items
        batch.append(item)
    return batch


def _take_back(items: deque[_Queued[Outcome]], item: _Queued[Outcome]) -> bool:
    """Removes `item` (by identity) if it is still queued."""
    for index, queued in enumerate(items):
        if queued is item:
            del items[index]
            return True
    return False


def _answer(batch: Sequence[_Queued[Outcome]], outcomes: Sequence[Outcome]) -> None:
    for item, outcome in zip(batch, outcomes, strict=True):
        item.outcome = outcome
        item.done.release()
