"""Group commit: client commands gathered into one Raft entry each tick, every caller answered.

PySyncObj's cost is per log entry: journal write, AppendEntries pickling, commit bookkeeping
and apply dispatch on every replica. With one entry per order the leader spent 71 % of its CPU
in that tick loop at a few hundred orders a second. So proposers do not propose: they queue
their command here and wake the tick thread, which takes everything queued since its last tick
and proposes it as few entries as the bounds allow (`take_batches`). A command that arrives
while an entry is being replicated simply waits for the next tick's entry; with no load an entry
carries one command and waits for nothing.

Bounds, and why:
- `MAX_BATCH_BYTES` (48 KiB of command text): PySyncObj sends an entry of 64 KiB or more
  (`appendEntriesBatchSizeBytes`) through its slow chunked transmission, one entry per several
  messages; below it, whole entries travel several to an AppendEntries message.
- `MAX_BATCH_COMMANDS` (128): every replica applies an entry in one go on its tick thread,
  holding the engine lock (so /status never sees half a batch), and answers none of its
  callers before the last command is applied. At ~70 us per order (measured here, with fills
  and digests) a full batch is ~9 ms: under the 10 ms heartbeat period, far under the 80 ms
  minimum election timeout, and less than half the 20 ms latency a trading client would accept.

A command larger than `MAX_BATCH_BYTES` still goes, alone in its entry, as before batching.
Pure logic (no PySyncObj, no clock): the node decides when to take and how to propose.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_BATCH_COMMANDS = 128
MAX_BATCH_BYTES = 48 * 1024

# (result, error) as PySyncObj hands it to a replicated call's callback.
ResultCallback = Callable[[object, object], None]


@dataclass(frozen=True, slots=True)
class Pending:
    text: str  # the command's canonical JSON
    size: int  # its UTF-8 length, as the journal will store it
    on_result: ResultCallback


class CommandBatcher:
    """Thread-safe: proposers `add` from HTTP threads, the tick thread `take_batches`."""

    def __init__(
        self, max_commands: int = MAX_BATCH_COMMANDS, max_bytes: int = MAX_BATCH_BYTES
    ) -> None:
        if max_commands < 1 or max_bytes < 1:
            raise ValueError("a batch holds at least one command of at least one byte")
        self._max_commands = max_commands
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pending: deque[Pending] = deque()

    def add(self, text: str, on_result: ResultCallback) -> bool:
        """Queue one command; True when the queue was empty, i.e. the caller must wake the tick
        thread (a non-empty queue has a wake-up on its way from whoever queued first)."""
        return self.add_many([(text, on_result)])

    def add_many(self, commands: Sequence[tuple[str, ResultCallback]]) -> bool:
        """Queue several commands in order under one hold of the lock (one client request's
        list); True when the caller must wake the tick thread, as for `add`."""
        items = [Pending(text, len(text.encode()), on_result) for text, on_result in commands]
        with self._lock:
            was_empty = not self._pending
            self._pending.extend(items)
        return was_empty and bool(items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def take_batches(self) -> list[list[Pending]]:
        """Everything queued, in arrival order, cut into batches within the bounds."""
        with self._lock:
            taken, self._pending = self._pending, deque()
        return cut_batches(taken, self._max_commands, self._max_bytes)


def cut_batches(
    pending: Sequence[Pending], max_commands: int, max_bytes: int
) -> list[list[Pending]]:
    """`pending` in order, in batches of at most `max_commands` and `max_bytes` (a batch holds
    at least one command, however large)."""
    batches: list[list[Pending]] = []
    current: list[Pending] = []
    current_bytes = 0
    for item in pending:
        if current and (len(current) >= max_commands or current_bytes + item.size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item.size
    if current:
        batches.append(current)
    return batches


def hand_out(batch: Sequence[Pending], results: object, error: object, success: object) -> None:
    """Give each command of an applied (or failed) entry its own answer: its own result when
    the entry was applied (`error == success`), the entry's error otherwise. A result list that
    does not match the batch is answered as an error: no caller is told a result not its own."""
    if error == success and isinstance(results, list) and len(results) == len(batch):
        for item, result in zip(batch, results, strict=True):
            item.on_result(result, error)
        return
    failure = error if error != success else "the entry's results do not match its commands"
    for item in batch:
        item.on_result(None, failure)
