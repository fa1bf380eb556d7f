"""State checkpoints, so a restarted engine node replays only the tail of its journal.

The journal stays complete (compaction is off: it is the replay and forensics record), so
without a checkpoint a restarted node applies every command since the cluster began. Under
the failover bench's 30 leader kills at 1,000 orders/s that replay grew to ~3 s of CPU per
restart, on a host whose two cores the order path already fills: the load generator fell
seconds behind its schedule and first_commit_ms grew with every kill.

A checkpoint is the whole `EngineState` after the entry at `applied_index`, with that entry's
Raft term. It is written by a forked child (as PySyncObj's own dumps are): the fork copies the
state as it is between two ticks, the parent goes on at once, and the child's pickling costs
the tick thread nothing. Followers write them, the leader does not (node.py), and the child
runs at nice 19. On start the node uses a checkpoint only if its journal holds the
same entry (index and term) at `applied_index`: entries up to it were applied, so they were
committed, and a committed entry is never rewritten. Anything else is ignored with a line on
stderr, and the node replays from the start as before.

The file is `<data-dir>/state.checkpoint`, written to a temporary name and renamed into place,
so a reader sees a whole checkpoint or the previous one. It is a pickle written by this
node's own process: trusted input, like PySyncObj's journal and dump files beside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import os
import pickle
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from targets.reference.engine.state import EngineState

CHECKPOINT_FILE = "state.checkpoint"
_MAGIC = b"HFTCHAOS-ENGINE-CHECKPOINT-3\n"  # 3: orders in the layout of their digest entry
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_PR_SET_PDEATHSIG = 1
_EXIT_FAILED = 1
# Loaded here, not in the child: dlopen after a fork can wait forever on a loader lock that
# another thread of the parent held at the fork.
_LIBC = ctypes.CDLL(None, use_errno=True)
# A checkpoint is due when the commands applied since the last one reach this share of the
# commands in it. Each checkpoint writes the whole state (~6 us per command in the child, by
# hand: 120,000 commands in 0.75 s), so the share trades the writing, ~6 / share us per
# command applied, against the restart, which replays at most share / (1 + share) of the
# commands (~31 us each) after reading the rest from the checkpoint (~5 us each).
TAIL_SHARE = 0.5


@dataclass(frozen=True)
class Checkpoint:
    applied_index: int
    applied_term: int
    state: EngineState


def checkpoint_bytes(checkpoint: Checkpoint) -> bytes:
    """The file's content for `checkpoint`: the magic line, then a sequence of pickles (the
    header, then the state's image a piece at a time; see `_image_pieces`)."""
    out = io.BytesIO()
    out.write(_MAGIC)
    pickle.dump((checkpoint.applied_index, checkpoint.applied_term), out, _PROTOCOL)
    for piece in _image_pieces(checkpoint.state.__getstate__()):
        pickle.dump(piece, out, _PROTOCOL)
    pickle.dump(_END, out, _PROTOCOL)
    return out.getvalue()


def read_checkpoint(data_dir: Path) -> Checkpoint | None:
    """The checkpoint in `data_dir`, or None if there is none or it cannot be read (the
    caller replays from the start; a damaged file is never fatal). Meant for a thread of its
    own: it takes ~5 us per command on an idle host and 3 times that on a busy one."""
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
        # One unpickler per pickle: an unpickler keeps its memo from one load to the next,
        # and each piece was written with a fresh one.
        stream = io.BytesIO(memoryview(data)[len(_MAGIC) :])
        applied_index, applied_term = pickle.load(stream)
        image = _image_from(stream)
        state = EngineState.__new__(EngineState)
        state.__setstate__(image)
    except Exception:  # a torn or foreign file: replaying from the start is always correct
        return None
    finally:
        if collecting:
            gc.enable()
    if not isinstance(applied_index, int) or not isinstance(applied_term, int):
        return None
    return Checkpoint(applied_index, applied_term, state)


# One pickle.loads is one C call that holds the GIL throughout: a whole checkpoint in one
# would stop the node's Raft thread for as long (~0.3 s of the 0.6 s for 120,000 commands).
# In pieces of this many items, the reading thread lets the others run between pieces.
_PIECE_ITEMS = 2_000
_END = "end"


def _image_pieces(image: dict[str, object]) -> Iterator[tuple[str, str, object]]:
    """(key, kind, content): a list or dict value goes as ("list"|"dict", count) followed by
    `count` pieces of at most _PIECE_ITEMS items; any other value as ("value", value)."""
    for key, value in image.items():
        if isinstance(value, list | dict):
            items = list(value.items()) if isinstance(value, dict) else value
            pieces = [items[at : at + _PIECE_ITEMS] for at in range(0, len(items), _PIECE_ITEMS)]
            yield key, type(value).__name__, len(pieces)
            for piece in pieces:
                yield key, "piece", piece
        else:
            yield key, "value", value


def _image_from(stream: io.BytesIO) -> dict[str, object]:
    image: dict[str, object] = {}
    while (record := pickle.load(stream)) != _END:
        key, kind, content = record
        if kind == "value":
            image[key] = content
            continue
        items: list[object] = []
        for _ in range(int(content)):
            piece_key, piece_kind, piece = pickle.load(stream)
            if (piece_key, piece_kind) != (key, "piece"):
                raise ValueError(f"piece of {piece_key!r} where one of {key!r} belongs")
            items.extend(piece)
        image[key] = dict(items) if kind == "dict" else items  # type: ignore[arg-type]
    return image


def is_due(commands_now: int, commands_at_last: int, min_commands: int) -> bool:
    """Whether enough has been applied since the last checkpoint to write another one."""
    if min_commands <= 0:
        return False
    grown = commands_now - commands_at_last
    return grown >= max(min_commands, int(commands_at_last * TAIL_SHARE))


class CheckpointWriter:
    """Forks a child per checkpoint, one at a time; used from the tick thread only."""

    def __init__(self, data_dir: Path, min_commands: int, rank: int = 0, members: int = 1) -> None:
        """`rank` of `members`: this node's place among the cluster's. The followers of one
        leader apply the same commands at the same time, and with the same thresholds they
        would all fork at once, slowing every member that acknowledges the leader's entries
        together; the first checkpoint of each comes `rank / members` of `min_commands`
        earlier, and the ones after keep their distance."""
        self._path = data_dir / CHECKPOINT_FILE
        self._min_commands = min_commands
        self._child: int | None = None
        self._commands_at_last = -(min_commands * rank // max(members, 1))
        self.written = 0  # checkpoints whose child exited cleanly (seen once reaped)

    def started_from(self, commands: int) -> None:
        """The node began from a checkpoint holding `commands` commands."""
        self._commands_at_last = commands

    def maybe_write(self, state: EngineState, applied_index: int, applied_term: int) -> bool:
        """Fork a writer if one is due and none is running. The caller must not let the
        state change during the call (the tick thread is its only mutator)."""
        self._reap()
        commands = state.command_count
        if self._child is not None or not is_due(
            commands, self._commands_at_last, self._min_commands
        ):
            return False
        payload = (applied_index, applied_term, state)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _write_in_child(self._path, payload, parent)  # never returns
        self._child = pid
        self._commands_at_last = commands
        return True

    def _reap(self) -> None:
        if self._child is None:
            return
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(self._child, os.WNOHANG)
            if pid == 0:
                return  # still writing
            if os.waitstatus_to_exitcode(status) == 0:
                self.written += 1
        self._child = None


def _write_in_child(path: Path, payload: tuple[int, int, EngineState], parent: int) -> None:
    """The child: only this thread exists, holding whatever locks other threads held at the
    fork, so it touches nothing shared (no logging, no print, no PySyncObj) and leaves with
    os._exit, running no atexit handler or finaliser of the parent's objects."""
    code = _EXIT_FAILED
    try:
        # Inherited sockets (Raft, HTTP, Kafka) would keep the node's ports bound after the
        # node itself died, and delay its restart.
        os.closerange(3, _max_fd())
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent()
        _yield_the_cpu()
        if os.getppid() != parent:
            return  # the node died before the line above: nobody wants this checkpoint
        data = checkpoint_bytes(Checkpoint(*payload))
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        code = 0
    finally:
        os._exit(code)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def _die_with_parent() -> None:
    # A node killed mid-checkpoint takes its writer with it: nothing outlives a kill fault
    # (its temporary file is removed when the node starts again).
    with contextlib.suppress(AttributeError):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _yield_the_cpu() -> None:
    # Background work on a host the order path fills: at normal priority the writers' pickling
    # took CPU from the order path (order-path bench, alternated, p99 at 1,000/s 42 / 43 ms with
    # follower checkpoints against 27 / 32 without). Nice 19 rather than SCHED_IDLE: an idle-
    # class writer on a host with no idle CPU would never finish.
    with contextlib.suppress(OSError):
        os.nice(19)


def remove_unfinished(data_dir: Path) -> None:
    """Temporary files of writers that were killed before their rename."""
    for leftover in data_dir.glob(f"{CHECKPOINT_FILE}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
