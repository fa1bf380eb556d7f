"""`hftchaos replay RUN_DIR`: rebuild every engine replica of a finished run from its journal
and compare with what the run recorded, for forensics after the fact.

Each engine node's journal is `<run_dir>/services/<node>/raft.journal` (the node's --data-dir).
The recorded side is `<run_dir>/final_state.json` (collect.save_final_state): the node's state
hash at its applied index, and its execution stream, which the replay must reproduce bit for
bit. A node with no recorded state is replayed over its committed entries and only reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.checks import ReplayReport
from targets.reference.checks.collect import FINAL_STATE_FILE, load_final_state
from targets.reference.checks.model import NodeFinal
from targets.reference.engine.journal import JOURNAL_FILE, JournalError, read_entries
from targets.reference.engine.state import AppliedCommand, replay

_HASH_SHOWN = 16


@dataclass(frozen=True)
class ReplayRow:
    node: str
    journal: Path
    entries: int  # commands replayed
    replayed_hash: str | None
    recorded_hash: str | None  # None: the run recorded no state for this node
    recorded_index: int | None
    match: bool | None  # None: nothing recorded to compare with, or the journal is unreadable
    executions_match: bool | None
    problem: str = ""


def replay_run(run_dir: Path) -> list[ReplayRow]:
    """One row per engine node that has a journal or a recorded state, sorted by node."""
    recorded: dict[str, NodeFinal] = {}
    problem = ""
    if (run_dir / FINAL_STATE_FILE).exists():
        try:
            recorded = load_final_state(run_dir).nodes
        except (OSError, ValueError, KeyError, TypeError) as error:
            problem = f"{run_dir / FINAL_STATE_FILE} unreadable: {error}"
    else:
        problem = f"no {FINAL_STATE_FILE}: nothing recorded to compare with"
    journals = {path.parent.name: path for path in run_dir.glob(f"services/*/{JOURNAL_FILE}")}
    names = sorted(set(journals) | {name for name, node in recorded.items() if node.status})
    return [
        _replay_node(
            name,
            journals.get(name, run_dir / "services" / name / JOURNAL_FILE),
            recorded.get(name),
            problem,
        )
        for name in names
    ]


def _replay_node(name: str, journal: Path, node: NodeFinal | None, problem: str) -> ReplayRow:
    has_record = node is not None and node.status is not None
    index = node.applied_index if node is not None and has_record else None
    recorded_hash = node.state_hash if node is not None and has_record else None
    try:
        # With a recorded index, replay exactly what the node had applied; else what the
        # journal says was committed.
        entries = read_entries(journal, include_uncommitted=index is not None)
    except (OSError, JournalError) as error:
        return ReplayRow(name, journal, 0, None, recorded_hash, index, None, None, str(error))
    commands = [
        AppliedCommand(e.raft_index, e.text, e.position)
        for e in entries
        if index is None or e.raft_index <= index
    ]
    state = replay(commands)
    replayed_hash = state.state_hash()
    if node is None or not has_record:
        why = problem or f"{name} was not reachable when the run ended: nothing recorded"
        return ReplayRow(name, journal, len(commands), replayed_hash, None, None, None, None, why)
    executions = state.execution_records(1, state.last_exec_seq)
    return ReplayRow(
        node=name,
        journal=journal,
        entries=len(commands),
        replayed_hash=replayed_hash,
        recorded_hash=recorded_hash,
        recorded_index=index,
        match=replayed_hash == recorded_hash,
        executions_match=executions == node.executions,
    )


def replay_report(run_dir: Path) -> ReplayReport:
    """`replay_run` as the table `hftchaos replay` prints (harness/checks/target.py)."""
    rows = replay_run(run_dir)
    return ReplayReport(
        columns=("node", "entries", "replayed hash", "recorded hash", "state", "executions"),
        rows=[
            (
                row.node,
                str(row.entries),
                (row.replayed_hash or "-")[:_HASH_SHOWN],
                (row.recorded_hash or "-")[:_HASH_SHOWN],
                row.match,
                row.executions_match,
            )
            for row in rows
        ],
        notes=[f"{row.node}: {row.problem}" for row in rows if row.problem],
        # Nothing recorded to compare with (None) is not a match either.
        matched=bool(rows) and all(row.match and row.executions_match for row in rows),
    )
