"""State checkpoints, so a restarted engine node replays only the tail of its journal.

The journal stays complete (compaction is off: it is the replay and forensics record), so
without a checkpoint a restarted node applies every command since the cluster began. Under
the failover bench's 30 leader kills at 1,000 orders/s that replay grew to ~3 s of CPU per
restart, on a host whose two cores the order path already fills: the load generator fell
seconds behind its schedule and first_commit_ms grew with every kill.

The checkpoint is a log of what changed: every `min_commands` applied commands the tick
thread takes the state's changes since the last record (`EngineState.take_changes`: rows of
the orders that changed, the new executions and commands, the digests) and a writer thread
appends them as one record to `<data-dir>/state.checkpoints`. The applies keep the list as
they go, so taking it costs the tick thread 0.04-0.5 ms per 1,000 commands (by hand), whatever
the size of the state; the writer's ~5 ms per record is on its own thread. (An earlier
version wrote the whole state from a forked child. Its cost grew with the state: in a
10-minute steady run at 1,000/s, forks of 230,000-390,000 commands stopped the node for
50-95 ms, each child lived 17-26 s, and meanwhile the forking node's collections took
100-214 ms instead of 20-40 (copy-on-write under the collector); all five leadership changes
of that run fell inside a child's life.) The leader writes records too, so a node that led
for long restarts from a recent one.

Reading replays the records in order into one image, stopping at the first that is torn or
does not follow on (a node killed mid-append, or a crash of the host, which can lose any
unsynced part: records are never fsynced, being only a shortcut). The node uses the result
only if its journal holds the entry (index and term) that the last good record ends at:
entries up to it were applied, so they were committed, and a committed entry is never
rewritten. Anything else is ignored with a line on stderr, the file is started afresh, and
the node replays from the start as before. Like the journal, the file only grows.

Each record is its byte length, the CRC-32 of its bytes, and a pickle written by this node's
own process: trusted input, like PySyncObj's journal and dump files beside it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import queue
import struct
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets.reference.engine.state import STATE_FORMAT, EngineState, StateChanges

CHECKPOINT_FILE = "state.checkpoints"
# Files of the whole-state checkpoints of earlier versions, removed on start.
_LEGACY_FILES = ("state.checkpoint", "state.checkpoint.*.tmp")
_MAGIC = b"HFTCHAOS-ENGINE-CHECKPOINTS-1\n"
_HEADER = struct.Struct("<II")  # the record's length and CRC-32
_PROTOCOL = pickle.HIGHEST_PROTOCOL
# Changes taken but not yet written beyond which the tick thread waits (the changes stay in the
# state's tracking meanwhile, and the next record is larger): memory stays bounded if the
# writer is starved of CPU.
_MAX_PENDING = 2


@dataclass(frozen=True)
class Checkpoint:
    applied_index: int
    applied_term: int
    state: EngineState
    valid_bytes: int  # the file's length up to the end of the last good record


def record_bytes(applied_index: int, applied_term: int, image: dict[str, object]) -> bytes:
    payload = pickle.dumps((applied_index, applied_term, image), _PROTOCOL)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def checkpoint_bytes(applied_index: int, applied_term: int, state: EngineState) -> bytes:
    """A whole checkpoint file of one record that holds all of `state` (for tests and tools:
    a node writes only changes)."""
    image = {**state.__getstate__(), "executions_from": 0, "commands_from": 0}
    return _MAGIC + record_bytes(applied_index, applied_term, image)


def read_checkpoint(data_dir: Path) -> Checkpoint | None:
    """The state as of the last good record in `data_dir`, or None if there is none (the
    caller replays from the start; a damaged file is never fatal). Meant for a thread of its
    own: it takes a few us per command, and lets other threads run between records."""
    path = data_dir / CHECKPOINT_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data.startswith(_MAGIC):
        return None
    collecting = gc.isenabled()
    # Millions of long-lived objects: the collections their allocation triggers doubled the
    # read (1.4 s against 0.6 s for 120,000 commands), and they hold no cycles.
    gc.disable()
    try:
        merged = _MergedImage()
        offset = valid = len(_MAGIC)
        last: tuple[int, int] | None = None
        view = memoryview(data)
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            payload = view[offset + _HEADER.size : offset + _HEADER.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break  # torn: the records before it stand
            try:
                applied_index, applied_term, image = pickle.loads(payload)
                merged.add(image)
            except Exception:  # not a record of this format: stop here as at a torn one
                break
            offset += _HEADER.size + length
            valid, last = offset, (int(applied_index), int(applied_term))
        if last is None:
            return None
        state = EngineState.__new__(EngineState)
        state.__setstate__(merged.image())
    except Exception:  # a foreign file: replaying from the start is always correct
        return None
    finally:
        if collecting:
            gc.enable()
    return Checkpoint(last[0], last[1], state, valid)


class _MergedImage:
    """Records folded, in order, into one image of `EngineState.__getstate__`'s layout."""

    def __init__(self) -> None:
        self.orders: dict[str, list[Any]] = {}
        self.acceptances: dict[str, tuple[Any, ...]] = {}
        self.order_terms: dict[str, int] = {}
        self.executions: list[tuple[Any, ...]] = []
        self.commands: list[tuple[Any, ...]] = []
        self.last: dict[str, Any] = {}

    def add(self, image: dict[str, Any]) -> None:
        if image["format"] != STATE_FORMAT:
            raise ValueError(f"state format {image['format']!r}, expected {STATE_FORMAT}")
        if (image["executions_from"], image["commands_from"]) != (
            len(self.executions),
            len(self.commands),
        ):
            raise ValueError("a record that does not follow on from the one before")
        for row in image["orders"]:
            self.orders[row[1]] = row  # the order id; a later row supersedes
        self.acceptances.update(image["acceptances"])
        self.order_terms.update(image["order_terms"])
        self.executions.extend(image["executions"])
        self.commands.extend(image["commands"])
        self.last = image

    def image(self) -> dict[str, object]:
        return {
            "format": STATE_FORMAT,
            # In arrival order (the first field), which rebuilds each book's time priority.
            "orders": sorted(self.orders.values(), key=lambda row: int(row[0])),
            "acceptances": self.acceptances,
            "executions": self.executions,
            "commands": self.commands,
            "published_seq": self.last["published_seq"],
            "order_terms": self.order_terms,
            "orders_digest": self.last["orders_digest"],
            "executions_digest": self.last["executions_digest"],
            "commands_digest": self.last["commands_digest"],
        }


class CheckpointLog:
    """Appends the state's changes to the checkpoint file. `begin` and `maybe_append` are for
    the tick thread only (the state's one mutator); a writer thread does the pickling and the
    writing."""

    def __init__(self, data_dir: Path, min_commands: int, node_id: str) -> None:
        self._path = data_dir / CHECKPOINT_FILE
        self._min_commands = min_commands
        self._node_id = node_id
        self._commands_at_last = 0
        self._pending: queue.SimpleQueue[tuple[int, int, StateChanges] | None] = queue.SimpleQueue()
        self._pending_count = 0  # taken, not yet written (the writer decrements it)
        self._count_lock = threading.Lock()
        self._fd: int | None = None
        self._state: EngineState | None = None  # the state whose changes are tracked
        self._failed = False
        self.appended = 0  # records written (by the writer thread)

    def begin(self, state: EngineState, checkpoint: Checkpoint | None) -> None:
        """Start appending after `checkpoint`, the one the node started from (or afresh with
        None), and track `state`'s changes from here on."""
        if self._min_commands <= 0:
            return
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o644)
            if checkpoint is None:
                os.ftruncate(fd, 0)
                os.write(fd, _MAGIC)
            else:
                os.ftruncate(fd, checkpoint.valid_bytes)  # a torn tail is cut off
            os.lseek(fd, 0, os.SEEK_END)
        except OSError as error:
            self._give_up(error)
            return
        self._fd = fd
        self._state = state
        state.track_changes()
        self._commands_at_last = state.command_count
        threading.Thread(target=self._write_records, name="checkpoint-write", daemon=True).start()

    def maybe_append(self, state: EngineState, applied_index: int, applied_term: int) -> bool:
        """Take the changes for a record if one is due and the writer keeps up. The caller
        gives the Raft index and term of the last entry `state` applied."""
        if not self.due(state):
            return False
        with self._count_lock:
            if self._pending_count >= _MAX_PENDING:
                return False
            self._pending_count += 1
        self._pending.put((applied_index, applied_term, state.take_changes()))
        self._commands_at_last = state.command_count
        return True

    def due(self, state: EngineState) -> bool:
        if self._fd is None or self._failed:
            return False
        if state is not self._state:
            # Replaced wholesale (a PySyncObj snapshot, which this engine never sends): its
            # changes were never tracked, so no record of it would follow on.
            self._give_up(OSError("the state was replaced"))
            return False
        return state.command_count - self._commands_at_last >= self._min_commands

    def close(self) -> None:
        """Write what was taken, then stop the writer (for tests; a node just exits)."""
        self._pending.put(None)

    def _write_records(self) -> None:
        while (item := self._pending.get()) is not None:
            applied_index, applied_term, changes = item
            try:
                if not self._failed and self._fd is not None:
                    _write_all(self._fd, record_bytes(applied_index, applied_term, changes.image()))
                    self.appended += 1
            except OSError as error:
                # A record written in part ends what a reader takes: nothing more is appended.
                self._give_up(error)
            finally:
                with self._count_lock:
                    self._pending_count -= 1
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _give_up(self, error: OSError) -> None:
        self._failed = True
        print(
            f"CHECKPOINT {self._node_id} not written: {error}; a restart replays the journal",
            file=sys.stderr,
            flush=True,
        )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def remove_legacy(data_dir: Path) -> None:
    """Whole-state checkpoints of earlier versions (and their writers' temporary files)."""
    for pattern in _LEGACY_FILES:
        for leftover in data_dir.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
