"""What the reference system's safety checks judge: its final state, gathered once after the
run (collect.py), and the helpers the checks share to name their evidence.

Execution and order records are the engine's own JSON (PROTOCOL.md, "Results and
executions"); Kafka messages are kept as (offset, value) in topic order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from targets.reference.engine.journal import JournalEntry

Record = dict[str, Any]


@dataclass
class NodeFinal:
    """One engine replica as it was found after the run."""

    node: str
    status: Record | None = None  # GET /status; None when the node could not be reached
    executions: list[Record] = field(default_factory=list)  # in seq order
    orders: dict[str, Record] = field(default_factory=dict)  # client_order_id -> record
    journal: list[JournalEntry] | None = None  # every command in its journal file
    problem: str = ""  # why the node could not be read, if it could not
    journal_problem: str = ""

    @property
    def reachable(self) -> bool:
        return self.status is not None and not self.problem

    @property
    def applied_index(self) -> int:
        return int((self.status or {}).get("state_hash_index") or 0)

    @property
    def state_hash(self) -> str | None:
        value = (self.status or {}).get("state_hash")
        return str(value) if value is not None else None


@dataclass
class FinalState:
    nodes: dict[str, NodeFinal]
    kafka: list[tuple[int, Record]] | None = None  # the executions topic from offset 0
    kafka_problem: str = ""
    consumer: Record | None = None  # the consumer's GET /status
    consumer_problem: str = ""
    leaders_by_term: dict[int, str] = field(default_factory=dict)  # from the ROLE log lines
    settled: bool = True
    settle_problem: str = ""
    # What moved while the nodes were read one after another (a new Raft term: the replicas
    # were read on either side of an election, so their indexes need not meet).
    read_problem: str = ""

    def reachable(self) -> list[NodeFinal]:
        return [node for node in self.nodes.values() if node.reachable]

    def unreachable(self) -> dict[str, str]:
        return {
            name: node.problem or "no status"
            for name, node in self.nodes.items()
            if not node.reachable
        }

    def reference(self) -> NodeFinal | None:
        """The node whose view stands for the system: the leader of the highest term if it
        answered, else the one that applied the most."""
        nodes = self.reachable()
        if not nodes:
            return None
        leaders = [n for n in nodes if (n.status or {}).get("role") == "leader"]
        if leaders:
            return max(leaders, key=lambda n: int((n.status or {}).get("term") or 0))
        by_name = sorted(nodes, key=lambda n: n.node)  # ties go to the first name
        return max(by_name, key=lambda n: (n.applied_index, len(n.executions)))


def taker_order_id(execution: Record) -> str:
    """The order whose arrival made this execution (the aggressor)."""
    side = "buy_order_id" if execution.get("aggressor") == "buy" else "sell_order_id"
    return str(execution.get(side))


def seq_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted seqs as inclusive (first, last) runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def range_text(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def nodes_text(nodes: list[str]) -> str:
    return ", ".join(sorted(nodes))


def unreachable_notes(final: FinalState) -> list[str]:
    return [f"{name} could not be read ({why})" for name, why in final.unreachable().items()]


def field_differences(record: Record, other: Record, labels: tuple[str, str] = ("", "")) -> str:
    """`field A vs B` for each field that differs; a time also as how far apart, in ms."""
    first, second = (f" ({label})" if label else "" for label in labels)
    parts = []
    for name in sorted(set(record) | set(other)):
        mine, theirs = record.get(name), other.get(name)
        if mine == theirs:
            continue
        text = f"{name} {mine}{first} vs {theirs}{second}"
        if name.endswith("_ns") and isinstance(mine, int) and isinstance(theirs, int):
            text += f" ({(mine - theirs) / 1e6:+.3f} ms)"
        parts.append(text)
    return ", ".join(parts)
