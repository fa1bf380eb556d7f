"""Leader-only publication of executions to Kafka, in `seq` order, at least once.

A thread of its own, never on the order path: when this node is leader it produces every
execution after the replicated `published_seq` (key = symbol, value = the execution JSON), and
as delivery reports confirm a gap-free prefix it proposes `mark_published(seq)` through Raft,
so whichever node leads next resumes from there. Duplicates are possible around a failover or
a delivery error; consumers deduplicate by `seq`.

Kafka being down only means executions wait: produce() never blocks (a full local queue is
retried later), failed deliveries rewind to the last confirmed seq and are produced again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # executions produced per pass, so delivery reports are served in between
POLL_S = 0.002  # how long one pass waits for delivery reports while some are outstanding
IDLE_WAIT_S = 0.05  # with nothing in flight, sleep until woken by new executions (or this)
FOLLOWER_CHECK_S = 0.01  # how often a non-leader looks at whether it became leader
# At most ~20 mark_published entries a second in the Raft log. Each is an entry replicated to,
# journalled on and applied by every node; at 10 ms they were a large share of the entries at
# 1,000 orders/s. A longer interval only means more executions produced again after a failover
# (consumers deduplicate by seq). Together with linger.ms 5 below and the consumer's fetch
# batching, the order path at 1,000/s went from p99 82-95 ms to 26-27 ms, leader CPU per order
# from ~500 to ~440 us and Kafka's from ~290 to ~215 us (the order-path bench rate point at 1,000/s,
# two runs of each, one session).
MARK_INTERVAL_S = 0.05
REMARK_S = 1.0  # re-propose a mark the replicated state does not show after this long
RETRY_BACKOFF_S = 0.5  # after a delivery error, before producing again
KAFKA_LOG_INTERVAL_S = 10.0  # a down broker is reported once per this interval
# One encoder for every message (json.dumps with options builds one per call).
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class ExecutionSource(Protocol):
    """What the publisher needs from the engine node."""

    def is_leader(self) -> bool: ...
    def published_seq(self) -> int: ...
    def execution_records(self, from_seq: int, limit: int) -> list[dict[str, object]]: ...
    def propose_published(self, seq: int) -> None: ...


class Producer(Protocol):
    """The part of confluent_kafka.Producer used here (a fake in tests)."""

    def produce(
        self, topic: str, *, value: bytes, key: bytes, on_delivery: Callable[[Any, Any], None]
    ) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...
    def purge(
        self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True
    ) -> None: ...


def kafka_producer(bootstrap: str) -> Producer:
    from confluent_kafka import Producer as KafkaProducer

    producer: Producer = KafkaProducer(
        {
            "bootstrap.servers": bootstrap,
            # Idempotence keeps the partition in produce order across librdkafka's retries.
            "enable.idempotence": True,
            "acks": "all",
            # Several executions per produce request: with 1 ms nearly every one went alone, and
            # the broker's per-request cost was paid per execution. Never on the order path.
            "linger.ms": 5,
            # Give up on a delivery after this long; the publisher then rewinds and retries.
            "message.timeout.ms": 10000,
            "socket.connection.setup.timeout.ms": 2000,
            "reconnect.backoff.max.ms": 1000,
            # librdkafka logs through Python logging (served by poll) instead of raw stderr,
            # where a down broker would print a line per reconnect attempt.
            "logger": _kafka_logger(),
        }
    )
    return producer


class ExecutionPublisher:
    def __init__(
        self,
        source: ExecutionSource,
        topic: str,
        producer_factory: Callable[[], Producer],
        skip_after_failover: int = 0,
    ) -> None:
        """`skip_after_failover` > 0 is the deliberate bug skip_publish_after_failover."""
        self._source = source
        self._skip_after_failover = skip_after_failover
        self._topic = topic
        self._producer_factory = producer_factory
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._new_executions = threading.Event()
        self._thread = threading.Thread(target=self._run, name="execution-publisher", daemon=True)
        self._leading = False
        self._generation = 0  # bumped on rewind: reports from older produce calls are ignored
        self._produced_through = 0
        self._confirmed_through = 0
        self._delivered_ahead: set[int] = set()  # confirmed seqs above the gap-free prefix
        self._marked_through = 0
        self._last_mark_time = 0.0
        self._paused_until = 0.0

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New executions were applied (called on the Raft tick thread: must stay cheap)."""
        self._new_executions.set()

    def stop(self, flush_timeout_s: float) -> None:
        """Stop producing; give queued executions `flush_timeout_s` to be delivered."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._producer is not None:
            self._producer.flush(flush_timeout_s)
            # What Kafka did not take in time is dropped here: the next leader publishes it.
            self._generation += 1  # purged messages are not delivery failures to act on
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.poll(0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._source.is_leader():
                    self._publish_pass()
                else:
                    self._step_down()
                    self._stop.wait(FOLLOWER_CHECK_S)
            except Exception:
                # The publisher must outlive any surprise; the next pass starts from state.
                logger.exception("execution publisher pass failed")
                self._step_down()
                self._stop.wait(RETRY_BACKOFF_S)

    def _publish_pass(self) -> None:
        if not self._leading:
            self._take_over()
        producer = self._ensure_producer()
        # Cleared before reading the state: an execution applied from here on sets it again.
        self._new_executions.clear()
        if time.monotonic() >= self._paused_until:
            self._produce_batch(producer)
        if self._produced_through > self._confirmed_through:
            producer.poll(POLL_S)
        else:
            producer.poll(0)
            self._new_executions.wait(IDLE_WAIT_S)
        self._propose_mark()

    def _take_over(self) -> None:
        start = self._source.published_seq()
        if self._skip_after_failover and start > 0:  # deliberate bug: a gap in the stream
            start += self._skip_after_failover
        self._leading = True
        self._generation += 1
        self._produced_through = self._confirmed_through = self._marked_through = start
        self._delivered_ahead.clear()

    def _step_down(self) -> None:
        if not self._leading:
            return
        self._leading = False
        self._generation += 1
        if self._producer is not None:
            # The new leader publishes from the replicated published_seq; what this node still
            # has queued would only add duplicates.
            self._producer.purge(in_queue=True, in_flight=False, blocking=False)
            self._producer.poll(0)

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self._producer = self._producer_factory()
        return self._producer

    def _produce_batch(self, producer: Producer) -> None:
        records = self._source.execution_records(self._produced_through + 1, BATCH_SIZE)
        generation = self._generation
        for record in records:
            seq = int(str(record["seq"]))
            try:
                producer.produce(
                    self._topic,
                    value=_COMPACT_JSON.encode(record).encode(),
                    key=str(record["symbol"]).encode(),
                    on_delivery=self._delivery_report(seq, generation),
                )
            except BufferError:
                return  # local queue full (Kafka slow or down): try again next pass
            self._produced_through = seq

    def _delivery_report(self, seq: int, generation: int) -> Callable[[Any, Any], None]:
        def report(error: Any, _message: Any) -> None:
            if generation != self._generation:
                return
            if error is not None:
                self._rewind(error)
                return
            self._delivered_ahead.add(seq)
            while self._confirmed_through + 1 in self._delivered_ahead:
                self._confirmed_through += 1
                self._delivered_ahead.discard(self._confirmed_through)

        return report

    def _rewind(self, error: Any) -> None:
        logger.warning(
            "delivery failed (%s); re-producing from seq %d", error, self._confirmed_through + 1
        )
        self._generation += 1
        self._produced_through = self._confirmed_through
        self._delivered_ahead.clear()
        self._paused_until = time.monotonic() + RETRY_BACKOFF_S
        if getattr(error, "fatal", lambda: False)():
            # A fatal producer error (e.g. idempotence state lost) needs a fresh producer.
            self._producer = None

    def _propose_mark(self) -> None:
        now = time.monotonic()
        since_last = now - self._last_mark_time
        advanced = self._confirmed_through > self._marked_through
        # A proposal can be lost (leadership flapping); repeat it until the state shows it.
        lost = since_last >= REMARK_S and self._source.published_seq() < self._confirmed_through
        if not (advanced and since_last >= MARK_INTERVAL_S) and not lost:
            return
        self._source.propose_published(self._confirmed_through)
        self._marked_through = self._confirmed_through
        self._last_mark_time = now


class _OncePerInterval(logging.Filter):
    """Lets through one record per librdkafka facility (FAIL, ERROR, ...) every `interval_s`."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._last_seen: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        # confluent-kafka logs ("%s [%s] %s", facility, client name, text).
        key = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        if now - self._last_seen.get(key, -self._interval_s) < self._interval_s:
            return False
        self._last_seen[key] = now
        return True


def _kafka_logger() -> logging.Logger:
    kafka_logger = logging.getLogger(f"{__name__}.librdkafka")
    if not kafka_logger.filters:
        kafka_logger.addFilter(_OncePerInterval(KAFKA_LOG_INTERVAL_S))
    return kafka_logger
