"""No double fills: no client order id is executed twice and no execution sequence number is
reused, on any replica or in the Kafka stream.

On each replica: the execution seqs run 1, 2, 3, ... with none repeated; no order is filled for
more than its quantity; no order is the aggressor of two separate matches (one arrival matches
once, in consecutive seqs); and every order was sent by a client of the run (when the history
holds the requests): an order nobody sent that repeats one somebody did is a re-application. In
Kafka, a seq published twice must carry the same execution both times.
"""

from __future__ import annotations

import json
from collections import defaultdict

from harness.checks import CheckResult, judged
from harness.history import History
from targets.reference.checks.model import (
    FinalState,
    NodeFinal,
    Record,
    nodes_text,
    range_text,
    seq_ranges,
    taker_order_id,
    unreachable_notes,
)

NAME = "no_double_fills"
_SAME_ORDER_FIELDS = ("account", "symbol", "side", "price", "quantity")


def no_double_fills(history: History, final: FinalState) -> CheckResult:
    requested = {r.client_order_id for r in history.requests if r.kind == "new"}
    found: dict[str, list[str]] = defaultdict(list)  # violation -> nodes showing it
    tally: dict[str, set[str]] = defaultdict(set)  # kind of violation -> keys
    nodes = final.reachable()
    for node in nodes:
        for kind, key, text in _node_violations(node, requested):
            found[text].append(node.node)
            tally[kind].add(key)
    violations = [f"{text} (on {nodes_text(where)})" for text, where in found.items()]
    for seq, text in _kafka_reused_seqs(final):
        violations.append(text)
        tally["reused_seqs"].add(str(seq))

    undecided = unreachable_notes(final)
    if not nodes:
        undecided.append("no engine node could be read")
    if not requested:
        undecided.append("the history holds no order requests: orders nobody sent not looked for")
    counts = {
        "executions": max((len(node.executions) for node in nodes), default=0),
        "orders": max((len(node.orders) for node in nodes), default=0),
        "nodes_checked": len(nodes),
        **{kind: len(tally[kind]) for kind in _KINDS},
    }
    summary = f"executions of {counts['orders']} orders checked on {len(nodes)} node(s)"
    return judged(NAME, violations, undecided, counts, summary)


_KINDS = ("reused_seqs", "overfilled_orders", "repeated_aggressors", "unrequested_orders")


def _node_violations(node: NodeFinal, requested: set[str]) -> list[tuple[str, str, str]]:
    """(kind, key, text) for everything wrong on one replica."""
    found: list[tuple[str, str, str]] = []
    seen: dict[int, Record] = {}
    for position, execution in enumerate(node.executions, start=1):
        seq = int(execution.get("seq", 0))
        if seq in seen:
            found.append(("reused_seqs", str(seq), f"execution seq {seq} is used twice"))
        elif seq != position:
            found.append(("reused_seqs", str(seq), f"execution #{position} has seq {seq}"))
        seen.setdefault(seq, execution)

    filled: dict[str, list[int]] = defaultdict(list)
    filled_quantity: dict[str, int] = defaultdict(int)
    taken: dict[str, list[int]] = defaultdict(list)
    for execution in node.executions:
        seq = int(execution.get("seq", 0))
        for side in ("buy_order_id", "sell_order_id"):
            filled[str(execution.get(side))].append(seq)
            filled_quantity[str(execution.get(side))] += int(execution.get("quantity", 0))
        taken[taker_order_id(execution)].append(seq)
    for order_id, seqs in filled.items():
        order = node.orders.get(order_id)
        total = filled_quantity[order_id]
        if order is not None and total > int(order.get("quantity", 0)):
            found.append(
                (
                    "overfilled_orders",
                    order_id,
                    f"order {order_id} (quantity {order.get('quantity')}) is filled {total} "
                    f"in {_seqs_text(seqs)}",
                )
            )
    for order_id, seqs in taken.items():
        runs = seq_ranges(seqs)
        if len(runs) > 1:
            found.append(
                (
                    "repeated_aggressors",
                    order_id,
                    f"order {order_id} matched as aggressor {len(runs)} times "
                    f"(seqs {', '.join(range_text(a, b) for a, b in runs)})",
                )
            )
    if requested:
        found += _unrequested(node, requested, filled)
    return found


def _unrequested(
    node: NodeFinal, requested: set[str], filled: dict[str, list[int]]
) -> list[tuple[str, str, str]]:
    requested_by_shape: dict[tuple[object, ...], list[str]] = defaultdict(list)
    for order_id, order in node.orders.items():
        if order_id in requested:
            requested_by_shape[_shape(order)].append(order_id)
    found = []
    for order_id, order in node.orders.items():
        if order_id in requested:
            continue
        if order_id in filled:
            what = f"executed in {_seqs_text(filled[order_id])}"
        else:
            what = f"accepted ({order.get('status')})"
        text = f"order {order_id} {what}, but no client sent it"
        twin = _twin(order_id, requested_by_shape.get(_shape(order), []))
        if twin is not None:
            text += f"; it repeats {twin} (same account, symbol, side, price, quantity)"
        found.append(("unrequested_orders", order_id, text))
    return found


def _shape(order: Record) -> tuple[object, ...]:
    return tuple(order.get(field) for field in _SAME_ORDER_FIELDS)


def _twin(order_id: str, same_shape: list[str]) -> str | None:
    """The requested order this one copies, preferring one whose id it extends."""
    extended = [other for other in same_shape if order_id.startswith(other)]
    candidates = extended or same_shape
    return candidates[-1] if candidates else None


def _kafka_reused_seqs(final: FinalState) -> list[tuple[int, str]]:
    contents: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for offset, value in final.kafka or []:
        seq = value.get("seq")
        if isinstance(seq, int):
            contents[seq][json.dumps(value, sort_keys=True)].append(offset)
    return [
        (
            seq,
            f"Kafka seq {seq} carries {len(variants)} different executions (offsets "
            + "; ".join(", ".join(map(str, offsets)) for offsets in variants.values())
            + ")",
        )
        for seq, variants in sorted(contents.items())
        if len(variants) > 1
    ]


def _seqs_text(seqs: list[int]) -> str:
    """`seq 5`, `seqs 5, 7-9`."""
    ranges = seq_ranges(seqs)
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    return ("seq " if single else "seqs ") + ", ".join(range_text(a, b) for a, b in ranges)
