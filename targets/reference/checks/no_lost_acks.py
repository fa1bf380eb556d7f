"""No lost acknowledgements: every order the gateway acknowledged is in the final committed
state of every replica, with the fills the acknowledgement reported, and every acknowledged
cancel left its order closed.

Fills are compared as counts of executions in which the order was the aggressor: exactly the
executions an acknowledgement of a new order carries (`RequestRecord.fills`).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from harness.checks import CheckResult, judged
from harness.history import History
from harness.records import Outcome, RequestRecord
from targets.reference.checks.model import (
    FinalState,
    NodeFinal,
    nodes_text,
    taker_order_id,
    unreachable_notes,
)

NAME = "no_lost_acks"
OPEN_STATUSES = ("new", "partially_filled")


def no_lost_acks(history: History, final: FinalState) -> CheckResult:
    acked_new = _acked(history, "new")
    acked_cancel = _acked(history, "cancel")
    nodes = final.reachable()
    newest = max((node.applied_index for node in nodes), default=0)
    # A replica that has not caught up may still receive what it lacks: not evidence.
    current = [node for node in nodes if node.applied_index == newest]
    missing: dict[str, list[str]] = defaultdict(list)
    fills: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    still_open: dict[tuple[str, str], list[str]] = defaultdict(list)
    for node in current:
        _judge_node(node, acked_new, acked_cancel, missing, fills, still_open)

    origin = history.phase_ns("load")
    violations = [
        f"order {order_id} acked{_when(acked_new[order_id], origin)} is missing on "
        f"{nodes_text(where)}"
        for order_id, where in missing.items()
    ]
    violations += [
        f"order {order_id} acked with {acked} fill(s), but {nodes_text(where)} hold(s) {held}"
        for (order_id, acked, held), where in fills.items()
    ]
    violations += [
        f"cancel of {order_id} acked, but the order is still {status} on {nodes_text(where)}"
        for (order_id, status), where in still_open.items()
    ]
    undecided = unreachable_notes(final) + [
        f"{node.node} was not checked: it applied up to index {node.applied_index}, "
        f"{newest - node.applied_index} entries behind"
        for node in nodes
        if node not in current
    ]
    if final.read_problem and any(node not in current for node in nodes):
        undecided.append(final.read_problem)  # why some were behind
    if not nodes:
        undecided.append("no engine node could be read")
    if not acked_new and not acked_cancel:
        undecided.append("nothing was acknowledged, so nothing could be lost")
    counts = {
        "acked_orders": len(acked_new),
        "acked_cancels": len(acked_cancel),
        "nodes_checked": len(current),
        "missing_orders": len(missing),
        "fill_mismatches": len(fills),
        "open_after_cancel": len(still_open),
    }
    summary = (
        f"{len(acked_new)} acked orders and {len(acked_cancel)} acked cancels checked on "
        f"{len(current)} node(s)"
    )
    return judged(NAME, violations, undecided, counts, summary)


def _acked(history: History, kind: str) -> dict[str, RequestRecord]:
    """The first acknowledgement per client order id (a resubmission is acked the same)."""
    acked: dict[str, RequestRecord] = {}
    for record in history.requests:
        if record.kind == kind and record.outcome is Outcome.ACKED:
            acked.setdefault(record.client_order_id, record)
    return acked


def _judge_node(
    node: NodeFinal,
    acked_new: dict[str, RequestRecord],
    acked_cancel: dict[str, RequestRecord],
    missing: dict[str, list[str]],
    fills: dict[tuple[str, int, int], list[str]],
    still_open: dict[tuple[str, str], list[str]],
) -> None:
    taker_fills = Counter(taker_order_id(execution) for execution in node.executions)
    for order_id, record in acked_new.items():
        if order_id not in node.orders:
            missing[order_id].append(node.node)
        elif taker_fills[order_id] != record.fills:
            fills[(order_id, record.fills, taker_fills[order_id])].append(node.node)
    for order_id in acked_cancel:
        order = node.orders.get(order_id)
        # No order at all: the cancel found none ("unknown_order"), which is not a loss.
        if order is not None and order.get("status") in OPEN_STATUSES:
            still_open[(order_id, str(order["status"]))].append(node.node)


def _when(record: RequestRecord, origin: int | None) -> str:
    if origin is None:
        return ""
    return f" at +{(record.end_ns - origin) / 1e9:.3f} s"
