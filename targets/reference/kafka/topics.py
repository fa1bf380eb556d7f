"""Create the reference topology's topics once the broker answers.

    python -m targets.reference.kafka.topics --bootstrap 127.0.0.1:9092 \\
        --topic executions:1 [--topic NAME:PARTITIONS[:REPLICATION_FACTOR] ...] --timeout-s 60

Retries until the broker answers, creates the topics that are missing (one that exists is fine),
waits until every partition has a leader, and exits 0. Exit 1 with one line on stderr when that
does not happen within --timeout-s; exit 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # re-exported by .admin without __all__

RETRY_PAUSE_S = 0.2
# One request may not outlast the retry loop by much.
REQUEST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int | None  # None: the broker's default.replication.factor


def parse_topic(text: str) -> TopicSpec:
    match = re.fullmatch(r"([A-Za-z0-9._-]+):([1-9]\d*)(?::([1-9]\d*))?", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME:PARTITIONS[:REPLICATION_FACTOR], e.g. executions:1"
        )
    factor = int(match[3]) if match[3] else None
    return TopicSpec(match[1], int(match[2]), factor)


class NotReadyError(Exception):
    """The broker cannot do it yet; try again."""


def ensure_topics(admin: AdminClient, topics: Sequence[TopicSpec], timeout_s: float) -> list[str]:
    """One attempt: create what is missing; the names created. NotReadyError if not done yet."""
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as error:
        raise NotReadyError(_describe(error)) from None
    missing = [spec for spec in topics if spec.name not in existing]
    created: list[str] = []
    if missing:
        new_topics = [
            NewTopic(spec.name, spec.partitions, spec.replication_factor or -1) for spec in missing
        ]
        futures = admin.create_topics(new_topics, request_timeout=timeout_s)
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise NotReadyError(f"creating {name}: {_describe(error)}") from None
    _require_leaders(admin, topics, timeout_s)
    return created


def _require_leaders(admin: AdminClient, topics: Sequence[TopicSpec], timeout_s: float) -> None:
    try:
        metadata = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as error:
        raise NotReadyError(_describe(error)) from None
    for spec in topics:
        topic = metadata.get(spec.name)
        if topic is None or topic.error is not None:
            raise NotReadyError(f"topic {spec.name} not in metadata yet")
        leaderless = [p.id for p in topic.partitions.values() if p.leader < 0 or p.error]
        if leaderless:
            raise NotReadyError(f"topic {spec.name} partitions {leaderless} have no leader yet")


def _describe(error: KafkaException) -> str:
    inner = error.args[0] if error.args else error
    return inner.str() if isinstance(inner, KafkaError) else str(inner)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m targets.reference.kafka.topics", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of a broker listener")
    parser.add_argument("--topic", type=parse_topic, action="append", required=True)
    parser.add_argument("--timeout-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    topics: list[TopicSpec] = args.topic

    # librdkafka would log every refused connection while the broker starts: keep quiet.
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "log_level": 0})
    started_ns = time.monotonic_ns()
    deadline_ns = started_ns + int(args.timeout_s * 1e9)
    last_problem = "no answer"
    while True:
        remaining_s = (deadline_ns - time.monotonic_ns()) / 1e9
        if remaining_s <= 0:
            print(
                f"topics: {args.bootstrap} not ready within {args.timeout_s:g}s: {last_problem}",
                file=sys.stderr,
            )
            return 1
        try:
            created = ensure_topics(admin, topics, min(REQUEST_TIMEOUT_S, max(remaining_s, 0.1)))
        except NotReadyError as problem:
            last_problem = str(problem)
            time.sleep(RETRY_PAUSE_S)
            continue
        elapsed_s = (time.monotonic_ns() - started_ns) / 1e9
        for spec in topics:
            state = "created" if spec.name in created else "exists"
            print(f"topic {spec.name}: {state} ({spec.partitions} partitions)")
        print(f"topics ready on {args.bootstrap} after {elapsed_s:.2f}s", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
