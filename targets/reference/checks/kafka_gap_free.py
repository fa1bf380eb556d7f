"""Kafka gap-free: reading the executions topic from the beginning, every execution seq the
engine committed appears, carrying exactly the committed execution.

Gaps fail the check, and so does a message that differs from the committed execution or names
a seq the engine never made. Duplicates are expected (delivery is at least once) and are counted
and reported; so are out-of-order seqs. The consumer's own view (GET /status) is judged too once
it has read the whole topic: it must show no gap and must not have applied a duplicate.
"""

from __future__ import annotations

from harness.checks import CheckResult, judged
from harness.history import History
from targets.reference.checks.model import (
    FinalState,
    NodeFinal,
    Record,
    field_differences,
    range_text,
    seq_ranges,
)

NAME = "kafka_gap_free"
_SHOWN = 5


def kafka_gap_free(history: History, final: FinalState) -> CheckResult:
    del history  # judged on the final state alone
    if final.kafka is None:
        return judged(NAME, [], [f"the topic could not be read: {final.kafka_problem}"], {}, "")
    reference = final.reference()
    committed = reference.executions if reference is not None else []
    messages = [
        (offset, value) for offset, value in final.kafka if isinstance(value.get("seq"), int)
    ]
    malformed = len(final.kafka) - len(messages)
    # Without a replica to say what was committed, the topic's own highest seq is the bound.
    expected = (
        len(committed)
        if reference is not None
        else max((int(value["seq"]) for _, value in messages), default=0)
    )

    seen, duplicates, out_of_order = _scan(messages)
    gaps = seq_ranges([seq for seq in range(1, expected + 1) if seq not in seen])
    violations = [_gap_text(first, last, seen) for first, last in gaps]
    mismatched = _mismatches(messages, committed, reference)
    violations += mismatched
    unknown_seqs = sorted(seq for seq in seen if seq > len(committed) or seq < 1)
    if reference is not None and unknown_seqs:
        violations.append(
            f"Kafka carries seqs {_ranges(unknown_seqs)} but {reference.node} committed only "
            f"{len(committed)} executions"
        )
    consumer_notes, consumer_violations = _consumer(final.consumer, len(seen))
    violations += consumer_violations

    undecided = []
    if reference is None:
        undecided.append("no engine node could be read, so the committed seqs are not known")
    if final.consumer is None and final.consumer_problem:
        undecided.append(f"consumer not read: {final.consumer_problem}")
    counts = {
        "messages": len(final.kafka),
        "distinct_seqs": len(seen),
        "committed_seqs": len(committed),
        "missing_seqs": sum(last - first + 1 for first, last in gaps),
        "duplicates": len(duplicates),
        "out_of_order": len(out_of_order),
        "mismatched": len(mismatched),
        "malformed": malformed,
        "consumer_duplicates": int((final.consumer or {}).get("duplicates") or 0),
        "consumer_gaps": len((final.consumer or {}).get("gaps") or []),
    }
    summary = (
        f"{len(final.kafka)} messages, {len(seen)} distinct seqs of {len(committed)} committed"
        f"{' on ' + reference.node if reference else ''}"
    )
    notes = [_duplicates_text(duplicates), _out_of_order_text(out_of_order), *consumer_notes]
    summary = "; ".join(part for part in [summary, *notes] if part)
    return judged(NAME, violations, undecided, counts, summary)


def _scan(
    messages: list[tuple[int, Record]],
) -> tuple[dict[int, int], list[tuple[int, int]], list[tuple[int, int, int]]]:
    """The topic in offset order: each seq's first offset, the repeats as (seq, offset), and
    the seqs that came after a higher one as (seq, offset, highest seq before it)."""
    seen: dict[int, int] = {}
    duplicates: list[tuple[int, int]] = []
    out_of_order: list[tuple[int, int, int]] = []
    highest = 0
    for offset, value in messages:
        seq = int(value["seq"])
        if seq in seen:
            duplicates.append((seq, offset))
            continue
        seen[seq] = offset
        if seq < highest:
            out_of_order.append((seq, offset, highest))
        highest = max(highest, seq)
    return seen, duplicates, out_of_order


def _gap_text(first: int, last: int, seen: dict[int, int]) -> str:
    before = seen.get(first - 1)
    after = seen.get(last + 1)
    where = []
    if before is not None:
        where.append(f"seq {first - 1} is at offset {before}")
    if after is not None:
        where.append(f"seq {last + 1} at offset {after}")
    context = f" ({', '.join(where)})" if where else ""
    if first == last:
        return f"execution seq {first} never reached Kafka{context}"
    count = last - first + 1
    return f"executions {range_text(first, last)} ({count} seqs) never reached Kafka{context}"


def _mismatches(
    messages: list[tuple[int, Record]], committed: list[Record], reference: NodeFinal | None
) -> list[str]:
    found = []
    for offset, value in messages:
        seq = int(value["seq"])
        if 1 <= seq <= len(committed) and value != committed[seq - 1]:
            node = reference.node if reference else "the engine"
            differences = field_differences(value, committed[seq - 1], ("Kafka", node))
            found.append(f"Kafka offset {offset} (seq {seq}) differs from {node}'s: {differences}")
    return found


def _consumer(consumer: Record | None, distinct_seqs: int) -> tuple[list[str], list[str]]:
    """(notes, violations) from the consumer's status; judged only once it read everything."""
    if consumer is None:
        return [], []
    duplicates = int(consumer.get("duplicates") or 0)
    gaps = consumer.get("gaps") or []
    caught_up = consumer.get("lag") == 0
    notes = [
        f"the consumer deduplicated {duplicates} and reports {len(gaps)} gap(s)"
        + ("" if caught_up else f" (lag {consumer.get('lag')}: not caught up, not judged)")
    ]
    if not caught_up:
        return notes, []
    violations = []
    if gaps:
        shown = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in gaps[:_SHOWN])
        violations.append(f"the consumer reports gaps {shown}")
    applied = consumer.get("applied")
    if isinstance(applied, int) and applied > distinct_seqs:
        violations.append(
            f"the consumer applied {applied} executions but the topic holds {distinct_seqs} "
            "distinct seqs: it did not deduplicate"
        )
    return notes, violations


def _duplicates_text(duplicates: list[tuple[int, int]]) -> str:
    if not duplicates:
        return ""
    shown = ", ".join(f"seq {seq} again at offset {offset}" for seq, offset in duplicates[:_SHOWN])
    return f"{len(duplicates)} duplicate(s), valid since consumers deduplicate by seq ({shown})"


def _out_of_order_text(out_of_order: list[tuple[int, int, int]]) -> str:
    if not out_of_order:
        return ""
    shown = ", ".join(
        f"seq {seq} at offset {offset} after seq {highest}"
        for seq, offset, highest in out_of_order[:_SHOWN]
    )
    return f"{len(out_of_order)} out of order ({shown})"


def _ranges(seqs: list[int]) -> str:
    return ", ".join(range_text(a, b) for a, b in seq_ranges(seqs))
