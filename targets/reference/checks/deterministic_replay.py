"""Deterministic replay: replaying a replica's journaled command log into a fresh engine gives
the state hash that replica reported and its execution stream, bit for bit. If a state cannot be
rebuilt from its log, nobody can prove after an incident what happened.

The journal may run ahead of what the node had applied when its status was read (uncommitted
entries, or entries that arrived since), so commands up to the reported `state_hash_index` are
replayed.
"""

from __future__ import annotations

from harness.checks import CheckResult, judged
from harness.history import History
from targets.reference.checks.model import (
    FinalState,
    NodeFinal,
    Record,
    field_differences,
)
from targets.reference.engine.state import AppliedCommand, EngineState, replay

NAME = "deterministic_replay"
_HASH_SHOWN = 12


def deterministic_replay(history: History, final: FinalState) -> CheckResult:
    del history  # judged on the final state alone
    violations: list[str] = []
    undecided: list[str] = []
    replayed_nodes = 0
    most_commands = 0
    for name, node in sorted(final.nodes.items()):
        if not node.reachable:
            undecided.append(f"{name} could not be read ({node.problem or 'no status'})")
            continue
        if node.journal is None:
            undecided.append(f"{name}: journal not read ({node.journal_problem})")
            continue
        # A node applies a whole entry at once (group commit puts many commands in one), so
        # `applied_index` is an entry index: every command of the entries up to it.
        entries = [
            AppliedCommand(e.raft_index, e.text, e.position)
            for e in node.journal
            if e.raft_index <= node.applied_index
        ]
        state = replay(entries)
        replayed_nodes += 1
        most_commands = max(most_commands, len(entries))
        problem = _compare(node, state, len(entries))
        if problem:
            violations.append(problem)
    counts = {
        "nodes_replayed": replayed_nodes,
        "commands_replayed": most_commands,
        "mismatched_nodes": len(violations),
    }
    summary = f"{replayed_nodes} journal(s) replayed, up to {most_commands} commands each"
    return judged(NAME, violations, undecided, counts, summary)


def _compare(node: NodeFinal, state: EngineState, commands: int) -> str:
    replayed = state.execution_records(1, state.last_exec_seq)
    same_hash = state.state_hash() == node.state_hash
    difference = _first_execution_difference(replayed, node.executions)
    if same_hash and not difference:
        return ""
    if not difference:
        difference = _first_order_difference(state, node)
    return (
        f"{node.node}: replaying {commands} journaled commands (to index {node.applied_index}) "
        f"gives state hash {state.state_hash()[:_HASH_SHOWN]}, the node reports "
        f"{(node.state_hash or '?')[:_HASH_SHOWN]}" + (f"; {difference}" if difference else "")
    )


def _first_execution_difference(replayed: list[Record], reported: list[Record]) -> str:
    for replayed_record, reported_record in zip(replayed, reported, strict=False):
        if replayed_record != reported_record:
            differences = field_differences(replayed_record, reported_record, ("replay", "node"))
            return f"first difference at execution seq {reported_record.get('seq')}: {differences}"
    if len(replayed) != len(reported):
        return f"replay makes {len(replayed)} executions, the node reported {len(reported)}"
    return ""


def _first_order_difference(state: EngineState, node: NodeFinal) -> str:
    for order_id, reported in node.orders.items():
        replayed = state.order_record(order_id)
        if replayed != reported:
            return f"order {order_id} replays as {replayed}, the node holds {reported}"
    return ""
