"""Gather the reference system's final state after a run, while the topology still runs.

First the replicas settle: every reachable engine node at the same applied index, the Kafka
publisher caught up (`published_seq == last_exec_seq`) and the consumer without lag, unchanged
for `settle_s`; or `timeout_s` passes, which is recorded. Then each node's status, executions,
orders and journal file are read, the executions topic from offset 0 to its high watermark,
the consumer's status, and the leaders of each term from the engines' ROLE log lines.

A node that cannot be reached is recorded with the reason; the checks then say unknown for it.
`save_final_state` keeps all of it (journals stay where they are) as `final_state.json` in the
run directory, so a run can be judged, or replayed (`replay.py`), again later.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import LogAccess
from harness.netaddr import url_address
from harness.store.atomic import write_text_atomically
from harness.topology.plan import Plan, PlannedService
from targets.reference.checks.model import FinalState, NodeFinal, Record
from targets.reference.engine.journal import JOURNAL_FILE, JournalError, parse_entries

FINAL_STATE_FILE = "final_state.json"
FORMAT = 1
TOPIC = "executions"
HTTP_TIMEOUT_S = 2.0
# Orders and executions read 2,000 at a time: building and encoding a page holds the engine's
# GIL (json.dumps in one C call); at 10,000 a page of a 600,000-order state held it ~36 ms,
# and leaders were re-elected during collection after long runs.
PAGE = 2_000
POLL_S = 0.05
KAFKA_GROUP = "hftchaos-checks"  # never joined; offsets are never committed
_ROLE_LINE = re.compile(r"^ROLE (\S+) leader term=(\d+)", re.MULTILINE)


class _UnreachableError(Exception):
    pass


def collect_final_state(
    plan: Plan,
    logs: LogAccess | None,
    settle_s: float,
    timeout_s: float = 30,
    topic: str = TOPIC,
) -> FinalState:
    members = plan.raft_members()
    consumer = _consumer_url(plan)
    settled, settle_problem = wait_settled(members, consumer, settle_s, timeout_s)
    kafka, kafka_problem = _read_topic(plan, topic, timeout_s)
    consumer_status, consumer_problem = (None, "no consumer in the topology")
    if consumer is not None:
        consumer_status, consumer_problem = _try_json(consumer)
    nodes = {member.name: _read_node(member, logs) for member in members}
    return FinalState(
        nodes=nodes,
        kafka=kafka,
        kafka_problem=kafka_problem,
        consumer=consumer_status,
        consumer_problem=consumer_problem,
        leaders_by_term=_leaders_by_term(members, logs),
        settled=settled,
        settle_problem=settle_problem,
        read_problem=terms_moved(nodes),
    )


def terms_moved(nodes: dict[str, NodeFinal]) -> str:
    """Said when the nodes' statuses, read one after another, are in different Raft terms."""
    terms = {
        name: node.status.get("term")
        for name, node in sorted(nodes.items())
        if node.status is not None and isinstance(node.status.get("term"), int)
    }
    if len(set(terms.values())) < 2:
        return ""
    seen = ", ".join(f"{name} in term {term}" for name, term in terms.items())
    return (
        f"the Raft term moved while the final state was read ({seen}): an election between "
        "the reads, so the replicas were not read at one index"
    )


# -- settling ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    applied: dict[str, int]
    unpublished: dict[str, int]  # node -> executions not yet confirmed in Kafka
    consumer_lag: int | None

    @property
    def agreed(self) -> bool:
        return (
            bool(self.applied)
            and len(set(self.applied.values())) == 1
            and not any(self.unpublished.values())
            and not self.consumer_lag
        )

    def problem(self) -> str:
        parts = []
        newest = max(self.applied.values(), default=0)
        parts += [
            f"{node} at applied index {index}, {newest - index} behind"
            for node, index in sorted(self.applied.items())
            if index < newest
        ]
        parts += [
            f"{node} has {count} executions not yet confirmed in Kafka"
            for node, count in sorted(self.unpublished.items())
            if count
        ]
        if self.consumer_lag:
            parts.append(f"consumer lag {self.consumer_lag}")
        if not self.applied:
            parts.append("no engine node answered")
        return "; ".join(parts)


def wait_settled(
    members: list[PlannedService], consumer_url: str | None, settle_s: float, timeout_s: float
) -> tuple[bool, str]:
    """(settled, what was still moving when the time ran out)."""
    deadline = time.monotonic() + timeout_s
    previous: _View | None = None
    stable_since = time.monotonic()
    while True:
        view = _view(members, consumer_url)
        now = time.monotonic()
        if view != previous or not view.agreed:
            stable_since = now
        elif now - stable_since >= settle_s:
            return True, ""
        previous = view
        if now >= deadline:
            return False, f"after {timeout_s:g} s: {view.problem() or 'still changing'}"
        time.sleep(POLL_S)


def _view(members: list[PlannedService], consumer_url: str | None) -> _View:
    applied: dict[str, int] = {}
    unpublished: dict[str, int] = {}
    for member in members:
        status, _ = _try_json(f"{_engine_url(member)}/status")
        if status is None:
            continue
        applied[member.name] = int(status.get("last_applied") or 0)
        unpublished[member.name] = int(status.get("last_exec_seq") or 0) - int(
            status.get("published_seq") or 0
        )
    lag = None
    if consumer_url is not None:
        consumer, _ = _try_json(consumer_url)
        if consumer is not None and isinstance(consumer.get("lag"), int):
            lag = int(consumer["lag"])
    return _View(applied, unpublished, lag)


# -- reading the engines -----------------------------------------------------------------------


def _read_node(member: PlannedService, logs: LogAccess | None) -> NodeFinal:
    node = NodeFinal(member.name)
    base = _engine_url(member)
    try:
        node.status = _get_json(f"{base}/status")
        node.executions = _paged(f"{base}/executions?from_seq={{start}}&limit={PAGE}", "executions")
        orders = _paged(f"{base}/orders?from_arrival={{start}}&limit={PAGE}", "orders")
        node.orders = {str(order["client_order_id"]): order for order in orders}
    except _UnreachableError as error:
        node.status = None
        node.problem = str(error)
    where = f"{member.name}: {JOURNAL_FILE}"
    if logs is None:
        node.journal_problem = f"{where}: the backend gives no access to service files"
        return node
    try:
        node.journal = parse_entries(logs.read_file(member.name, JOURNAL_FILE), where)
    except (OSError, JournalError) as error:
        node.journal_problem = f"{where}: {error}"
    return node


def _paged(url_template: str, key: str) -> list[Record]:
    records: list[Record] = []
    while True:
        page = _get_json(url_template.format(start=len(records) + 1)).get(key)
        if not isinstance(page, list):
            raise _UnreachableError(f"{url_template.split('?')[0]} answered without {key!r}")
        records.extend(page)
        if len(page) < PAGE:
            return records


def _engine_url(member: PlannedService) -> str:
    if "http" in member.ports:
        return f"http://{url_address(member.address('http'))}"
    return (member.raft_status_url or "").removesuffix("/status")


def _consumer_url(plan: Plan) -> str | None:
    consumers = [s for s in plan.with_role("consumer") if "http" in s.ports]
    return f"http://{url_address(consumers[0].address('http'))}/status" if consumers else None


def _get_json(url: str) -> Record:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            body = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError) as error:
        raise _UnreachableError(f"GET {url}: {error}") from None
    if not isinstance(body, dict):
        raise _UnreachableError(f"GET {url}: not a JSON object")
    return body


def _try_json(url: str) -> tuple[Record | None, str]:
    try:
        return _get_json(url), ""
    except _UnreachableError as error:
        return None, str(error)


def _leaders_by_term(members: list[PlannedService], logs: LogAccess | None) -> dict[int, str]:
    leaders: dict[int, str] = {}
    for member in members:
        try:
            text = logs.read_log(member.name) if logs is not None else ""
        except OSError:
            continue
        for node, term in _ROLE_LINE.findall(text):
            leaders[int(term)] = node
    return leaders


# -- reading Kafka -----------------------------------------------------------------------------


def _read_topic(
    plan: Plan, topic: str, timeout_s: float
) -> tuple[list[tuple[int, Record]] | None, str]:
    brokers = [s for s in plan.with_role("kafka") if "client" in s.ports]
    if not brokers:
        return None, "no Kafka broker with a client listener in the topology"
    try:
        # A broker's `harness` listener is advertised where the harness reaches it (127.0.0.1
        # on Docker, where `client` is advertised by the broker's name on the run's network).
        bootstrap = ",".join(
            broker.address("harness" if "harness" in broker.ports else "client")
            for broker in brokers  # any one alive
        )
        return read_topic(bootstrap, topic, timeout_s), ""
    except _KafkaReadError as error:
        return None, str(error)


class _KafkaReadError(Exception):
    pass


def read_topic(bootstrap: str, topic: str, timeout_s: float) -> list[tuple[int, Record]]:
    """Partition 0 of `topic` from offset 0 to the high watermark, as (offset, JSON value)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": KAFKA_GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 2,
        }
    )
    deadline = time.monotonic() + timeout_s
    messages: list[tuple[int, Record]] = []
    try:
        try:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, 0), timeout=max(1.0, timeout_s / 3)
            )
        except KafkaException as error:
            raise _KafkaReadError(f"Kafka at {bootstrap}: {error}") from None
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        next_offset = 0
        while next_offset < high:
            if time.monotonic() > deadline:
                raise _KafkaReadError(
                    f"read {topic} only to offset {next_offset} of {high} in {timeout_s:g} s"
                )
            # No more than are left: consume waits its whole timeout for a fuller batch
            # (0.5 s of every collection, when the last batch was asked for 1,000).
            wanted = min(1000, high - next_offset)
            batch = consumer.consume(num_messages=wanted, timeout=0.5)
            for message in batch:
                offset = message.offset()
                if message.error() is None and offset is not None:
                    messages.append((offset, _value(message.value())))
                    next_offset = offset + 1
            if not batch:
                # Control records take offsets but are never delivered.
                position = consumer.position([TopicPartition(topic, 0)])[0].offset
                next_offset = max(next_offset, position)
    finally:
        consumer.close()
    return messages


def _value(raw: bytes | None) -> Record:
    try:
        value = json.loads(raw or b"")
    except ValueError:
        return {"malformed": (raw or b"")[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"malformed": str(value)[:200]}


# -- keeping it with the run -------------------------------------------------------------------


def save_final_state(run_dir: Path, final: FinalState) -> Path:
    """Write `final_state.json` atomically (journals are not copied: they are in services/)."""
    document = {
        "format": FORMAT,
        "settled": final.settled,
        "settle_problem": final.settle_problem,
        "read_problem": final.read_problem,
        "nodes": {
            name: {
                "status": node.status,
                "problem": node.problem,
                "journal_entries": None if node.journal is None else len(node.journal),
                "journal_problem": node.journal_problem,
                "executions": node.executions,
                "orders": node.orders,
            }
            for name, node in final.nodes.items()
        },
        "kafka": final.kafka,
        "kafka_problem": final.kafka_problem,
        "consumer": final.consumer,
        "consumer_problem": final.consumer_problem,
        "leaders_by_term": {str(term): node for term, node in final.leaders_by_term.items()},
    }
    path = run_dir / FINAL_STATE_FILE
    write_text_atomically(path, json.dumps(document, separators=(",", ":")))
    return path


def load_final_state(run_dir: Path) -> FinalState:
    """What `save_final_state` wrote; journals are left unread (None)."""
    document: dict[str, Any] = json.loads((run_dir / FINAL_STATE_FILE).read_text())
    if document.get("format") != FORMAT:
        raise ValueError(f"{run_dir / FINAL_STATE_FILE}: unknown format {document.get('format')}")
    nodes = {
        name: NodeFinal(
            node=name,
            status=facts["status"],
            executions=facts["executions"],
            orders=facts["orders"],
            problem=facts["problem"],
            journal_problem=facts["journal_problem"],
        )
        for name, facts in document["nodes"].items()
    }
    kafka = document["kafka"]
    return FinalState(
        nodes=nodes,
        kafka=None if kafka is None else [(int(offset), value) for offset, value in kafka],
        kafka_problem=document["kafka_problem"],
        consumer=document["consumer"],
        consumer_problem=document["consumer_problem"],
        leaders_by_term={int(term): node for term, node in document["leaders_by_term"].items()},
        settled=document["settled"],
        settle_problem=document["settle_problem"],
        read_problem=document.get("read_problem", ""),  # older files have none
    )
