"""Read the engine's command log back out of a PySyncObj journal file (read-only).

A node started with `--data-dir D` keeps its Raft log in `D/raft.journal` (PySyncObj's
FileJournal) and the commit index in `D/raft.journal.meta`. Log compaction is switched off in
node.py, so the journal holds every entry since the cluster was created.

File layout (pysyncobj 0.3.x, journal.py): a 40-byte header (name, version, format, offset of
the end of the last record) and then records `size:u32 | index:u64 | term:u64 | entry | size:u32`.
An entry is one type byte (0 regular, 1 no-op, 2 membership, 3 code version) and, for regular
entries, a pickle of `(method_id, (argument,))`: the node has exactly one replicated method.
Its argument is a list of command texts (canonical JSON), one entry holding many commands
(group commit, batching.py); a journal written before group commit holds one text instead,
read as a batch of one. Each command is read out as its own `JournalEntry`, with the entry's
index and term and its position in the entry.

    from targets.reference.engine.journal import read_commands
    from targets.reference.engine.state import replay
    state = replay(read_commands("data/n1/raft.journal"))

Entries past the stored commit index may be uncommitted (a later leader may overwrite them);
`read_commands` leaves them out unless asked. The stored commit index is written about once a
second, so the newest committed entries may be left out too; other replicas have them.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import NamedTuple

from targets.reference.engine.state import AppliedCommand

JOURNAL_FILE = "raft.journal"  # in the node's --data-dir
_HEADER_SIZE = 40
_LAST_RECORD_OFFSET_AT = 36
_REGULAR_ENTRY = 0


class JournalError(ValueError):
    pass


class JournalEntry(NamedTuple):
    """One command of the log with the Raft term in which its leader proposed it, and its
    place in its entry (many commands share an entry's index)."""

    raft_index: int
    term: int
    text: str
    position: int = 0


def read_commands(
    journal_path: str | Path, include_uncommitted: bool = False
) -> list[AppliedCommand]:
    return [
        AppliedCommand(entry.raft_index, entry.text, entry.position)
        for entry in read_entries(journal_path, include_uncommitted)
    ]


def read_entries(journal_path: str | Path, include_uncommitted: bool = False) -> list[JournalEntry]:
    """Like `read_commands`, with each command's term."""
    commit_index = None if include_uncommitted else stored_commit_index(journal_path)
    return parse_entries(Path(journal_path).read_bytes(), str(journal_path), commit_index)


def parse_entries(data: bytes, source: str, commit_index: int | None = None) -> list[JournalEntry]:
    """A journal's entries from its bytes, however they were read (`source` names it in
    errors); up to `commit_index` when given, every entry written otherwise."""
    if len(data) < _HEADER_SIZE or not data.startswith(b"PYSYNCOBJ"):
        raise JournalError(f"{source}: not a PySyncObj journal")
    (end,) = struct.unpack_from("<I", data, _LAST_RECORD_OFFSET_AT)
    entries: list[JournalEntry] = []
    offset = _HEADER_SIZE
    while offset < end:
        (size,) = struct.unpack_from("<I", data, offset)
        index, term = struct.unpack_from("<QQ", data, offset + 4)
        entry = data[offset + 20 : offset + 4 + size]
        offset += size + 8
        if commit_index is not None and index > commit_index:
            break
        if entry[:1] == bytes([_REGULAR_ENTRY]):
            texts = _command_texts(entry[1:], index)
            entries.extend(JournalEntry(index, term, text, pos) for pos, text in enumerate(texts))
    return entries


def stored_commit_index(journal_path: str | Path) -> int:
    meta_path = Path(f"{journal_path}.meta")
    if not meta_path.exists():
        return 1
    # The meta file is a pickled dict written by this node's own PySyncObj: trusted input.
    meta = pickle.loads(meta_path.read_bytes())
    return int(meta.get("raftCommitIndex", 1))


def _command_texts(pickled: bytes, index: int) -> list[str]:
    # Written by this node's own PySyncObj: trusted input.
    call = pickle.loads(pickled)
    # (method_id, args) or, when the proposer passed sync/timeout, (method_id, args, {}).
    args = call[1] if isinstance(call, tuple) and len(call) in (2, 3) else None
    argument = args[0] if isinstance(args, tuple) and len(args) == 1 else None
    if isinstance(argument, str):
        return [argument]  # one command per entry, as before group commit
    if isinstance(argument, list) and argument and all(isinstance(text, str) for text in argument):
        return argument
    raise JournalError(f"entry {index}: unexpected call {_shortened(call)}")


def _shortened(call: object) -> str:
    # A batch can hold 48 KiB of commands; an error message names the shape, not all of it.
    text = repr(call)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"
