"""Timestamps: execution timestamps never go backwards within the execution stream, also when
a node with a skewed clock becomes leader.

Each replica's stream is checked. A step back is reported with the seqs, how far back it went,
and, from the journal, the Raft index and term of the order that made it and the leader of that
term (from the engines' ROLE lines, else from the leader probe). The engine's guard that holds a
time at the previous one instead of going back is reported too, though valid: it is how a
skewed leader shows in a healthy run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from harness.checks import CheckResult, judged
from harness.history import History
from targets.reference.checks.model import (
    FinalState,
    NodeFinal,
    nodes_text,
    taker_order_id,
    unreachable_notes,
)

NAME = "monotonic_timestamps"
NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class _Stamp:
    raft_index: int
    term: int
    ts_ns: int


def monotonic_timestamps(history: History, final: FinalState) -> CheckResult:
    leaders = _leaders_by_term(history, final)
    found: dict[str, list[str]] = defaultdict(list)
    held: set[int] = set()  # seqs
    held_ms = 0.0
    held_by: set[str] = set()
    nodes = final.reachable()
    for node in nodes:
        stamps = _stamps(node)
        previous = None
        for execution in node.executions:
            ts_ns = int(execution.get("ts_ns", 0))
            stamp = stamps.get(taker_order_id(execution))
            if previous is not None and ts_ns < int(previous.get("ts_ns", 0)):
                text = _step_back_text(execution, previous, stamp, leaders)
                found[text].append(node.node)
            elif (
                previous is not None
                and stamp is not None
                and stamp.ts_ns < ts_ns == int(previous.get("ts_ns", 0))
            ):
                held.add(int(execution.get("seq", 0)))
                held_ms = max(held_ms, (ts_ns - stamp.ts_ns) / NS_PER_MS)
                held_by.add(_stamped_by(stamp, leaders))
            previous = execution
    violations = [f"{text} (on {nodes_text(where)})" for text, where in found.items()]
    undecided = unreachable_notes(final)
    if not nodes:
        undecided.append("no engine node could be read")
    counts = {
        "executions": max((len(node.executions) for node in nodes), default=0),
        "nodes_checked": len(nodes),
        "steps_back": len(found),
        "held_by_guard": len(held),
    }
    summary = f"execution timestamps checked on {len(nodes)} node(s)"
    if held:
        summary += (
            f"; the engine held {len(held)} execution time(s) at the previous one instead of going "
            f"back, by up to {held_ms:.1f} ms (stamped by {', '.join(sorted(held_by))})"
        )
    return judged(NAME, violations, undecided, counts, summary)


def _step_back_text(
    execution: dict[str, object],
    previous: dict[str, object],
    stamp: _Stamp | None,
    leaders: dict[int, str],
) -> str:
    back_ms = (int(str(previous.get("ts_ns"))) - int(str(execution.get("ts_ns")))) / NS_PER_MS
    order_id = taker_order_id(execution)
    text = (
        f"execution seq {execution.get('seq')} (order {order_id}) is {back_ms:.3f} ms earlier "
        f"than seq {previous.get('seq')}"
    )
    if stamp is not None:
        text += f"; stamped at raft index {stamp.raft_index} by {_stamped_by(stamp, leaders)}"
    return text


def _stamped_by(stamp: _Stamp, leaders: dict[int, str]) -> str:
    leader = leaders.get(stamp.term)
    return f"leader {leader} in term {stamp.term}" if leader else f"the leader of term {stamp.term}"


def _stamps(node: NodeFinal) -> dict[str, _Stamp]:
    """client_order_id -> where its `new` command is in the journal and its leader stamp."""
    stamps: dict[str, _Stamp] = {}
    for entry in node.journal or []:
        try:
            command = json.loads(entry.text)
        except ValueError:
            continue
        if isinstance(command, dict) and command.get("type") == "new":
            order_id = str(command.get("client_order_id"))
            ts_ns = command.get("ts_ns")
            if order_id not in stamps and isinstance(ts_ns, int):
                stamps[order_id] = _Stamp(entry.raft_index, entry.term, ts_ns)
    return stamps


def _leaders_by_term(history: History, final: FinalState) -> dict[int, str]:
    leaders = {
        sample.term: sample.node
        for sample in history.probes
        if sample.role == "leader" and sample.term is not None
    }
    leaders.update(final.leaders_by_term)  # the nodes' own word wins over sampling
    return leaders
