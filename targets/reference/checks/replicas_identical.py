"""Replicas identical: after the run and a settle period, every engine replica reports the same
state hash at the same applied index. A replica that has not caught up is reported with how far
behind it is; where the replicas' histories overlap, their executions must still agree.
"""

from __future__ import annotations

from collections import defaultdict

from harness.checks import CheckResult, judged
from harness.history import History
from targets.reference.checks.model import (
    FinalState,
    NodeFinal,
    Record,
    field_differences,
    nodes_text,
    unreachable_notes,
)

NAME = "replicas_identical"
_HASH_SHOWN = 12


def replicas_identical(history: History, final: FinalState) -> CheckResult:
    del history  # judged on the final state alone
    nodes = sorted(final.reachable(), key=lambda n: n.node)
    newest = max((node.applied_index for node in nodes), default=0)
    current = [node for node in nodes if node.applied_index == newest]
    behind = [node for node in nodes if node.applied_index < newest]

    violations = _hash_differences(current, newest)
    differing_seqs, first_difference = _execution_differences(nodes)
    violations += first_difference
    differing_orders, order_examples = (
        _order_differences(current) if len(_hashes(current)) > 1 else (0, [])
    )
    violations += order_examples

    undecided = unreachable_notes(final)
    undecided += [
        f"{node.node} is {_entries(newest - node.applied_index)} behind "
        f"(applied index {node.applied_index}, others {newest}): its hash cannot be compared"
        for node in behind
    ]
    if len(nodes) < 2 and not undecided:
        undecided.append("fewer than two replicas to compare")
    if not final.settled and final.settle_problem:
        undecided.append(f"replicas did not settle: {final.settle_problem}")
    if behind and final.read_problem:  # why they are behind: the reads straddled an election
        undecided.append(final.read_problem)
    counts = {
        "nodes": len(final.nodes),
        "nodes_compared": len(current),
        "distinct_hashes": len(_hashes(current)),
        "max_entries_behind": max((newest - node.applied_index for node in behind), default=0),
        "differing_executions": differing_seqs,
        "differing_orders": differing_orders,
    }
    summary = f"{len(current)} replica(s) compared at applied index {newest}"
    return judged(NAME, violations, undecided, counts, summary)


def _hashes(nodes: list[NodeFinal]) -> dict[str, list[str]]:
    by_hash: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        by_hash[node.state_hash or "?"].append(node.node)
    return by_hash


def _hash_differences(nodes: list[NodeFinal], index: int) -> list[str]:
    by_hash = _hashes(nodes)
    if len(by_hash) < 2:
        return []
    groups = sorted(by_hash.items(), key=lambda item: (-len(item[1]), item[1]))
    described = "; ".join(
        f"{nodes_text(names)} {state_hash[:_HASH_SHOWN]}" for state_hash, names in groups
    )
    return [f"state hashes differ at applied index {index}: {described}"]


def _execution_differences(nodes: list[NodeFinal]) -> tuple[int, list[str]]:
    """How many seqs differ between replicas, over the seqs they all have (a lagging one has
    fewer), and the first one described: where they parted, against the majority's version."""
    common = min((len(node.executions) for node in nodes), default=0)
    differing = 0
    first: list[str] = []
    for position in range(common):
        versions: dict[str, list[str]] = defaultdict(list)
        records: dict[str, Record] = {}
        for node in nodes:
            record = node.executions[position]
            key = repr(sorted(record.items()))
            versions[key].append(node.node)
            records[key] = record
        if len(versions) < 2:
            continue
        differing += 1
        if first:
            continue
        majority = max(versions, key=lambda key: len(versions[key]))
        first = [
            f"execution seq {records[key].get('seq')} differs on {nodes_text(names)} "
            f"from {nodes_text(versions[majority])}: "
            f"{field_differences(records[key], records[majority])}"
            for key, names in versions.items()
            if key != majority
        ]
    if differing > 1 and first:
        first[-1] += f" (and {differing - 1} later seqs differ)"
    return differing, first


def _order_differences(nodes: list[NodeFinal], shown: int = 3) -> tuple[int, list[str]]:
    """How many orders differ between the replicas, and the first `shown` described."""
    ids = sorted({order_id for node in nodes for order_id in node.orders})
    differing = 0
    found: list[str] = []
    for order_id in ids:
        versions: dict[str, list[str]] = defaultdict(list)
        records: dict[str, Record | None] = {}
        for node in nodes:
            record = node.orders.get(order_id)
            key = repr(sorted(record.items())) if record else "absent"
            versions[key].append(node.node)
            records[key] = record
        if len(versions) < 2:
            continue
        differing += 1
        if len(found) >= shown:
            continue
        parts = []
        for key, names in sorted(versions.items(), key=lambda item: item[1]):
            record = records[key]
            state = (
                "absent"
                if record is None
                else f"quantity {record.get('quantity')} filled {record.get('filled')} "
                f"{record.get('status')}"
            )
            parts.append(f"{nodes_text(names)}: {state}")
        found.append(f"order {order_id} differs: {'; '.join(parts)}")
    return differing, found


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"
