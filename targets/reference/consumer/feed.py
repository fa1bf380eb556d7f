"""Reads the executions topic from the beginning in a background thread into an ExecutionTracker.

Partitions are assigned directly rather than through a consumer-group subscription: a group
rebalance would make a restarted consumer wait for its killed predecessor's session to expire
(tens of seconds) before reading anything, which a chaos run would misread as lag. Offsets are
never committed, so every start rebuilds positions from offset 0, as a fresh downstream system
would. Kafka being down or the topic not existing yet only delays the start.

Lag is asked of the broker through a second client handle: confluent-kafka serialises all calls
on one handle, and the poll loop, always back inside consume(), would starve a status request.
A third thread asks every LAG_REFRESH_S and keeps the answer: a status request never waits on
Kafka (with the partition leader's broker dead, each ask waits out its timeout), and the lag it
reports is at most LAG_MAX_AGE_S old, else null.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from targets.reference.consumer.tracker import (
    Execution,
    ExecutionTracker,
    MalformedExecutionError,
    parse_execution,
)


@dataclass(frozen=True)
class FeedSettings:
    bootstrap: str
    topic: str
    group: str
    batch_size: int = 500
    poll_timeout_s: float = 0.2
    metadata_timeout_s: float = 1.0
    topic_retry_pause_s: float = 0.5
    watermark_timeout_s: float = 0.5
    lag_refresh_s: float = 0.1
    lag_max_age_s: float = 2.0


class ExecutionFeed:
    def __init__(self, settings: FeedSettings) -> None:
        self._settings = settings
        self._tracker = ExecutionTracker()
        self._state_lock = threading.Lock()  # tracker and offsets: poll thread vs. status
        self._partitions: list[int] = []
        self._next_offsets: dict[int, int] = {}
        self._malformed = 0
        self._last_error: str | None = None
        self._reported_error_kinds: set[str] = set()
        self._stop = threading.Event()
        self._consumer = Consumer({**self._client_config(), "error_cb": self._on_error})
        # Only ever used under the lock, and never after close().
        self._watermark_lock = threading.Lock()
        self._watermark_client_closed = False
        self._watermark_client = Consumer(self._client_config())
        self._thread = threading.Thread(target=self._run, name="kafka-poll", daemon=True)
        self._measured_lag: tuple[int | None, float] = (None, float("-inf"))  # (lag, monotonic s)
        self._lag_thread = threading.Thread(target=self._measure_lag, name="kafka-lag", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._lag_thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        elif self._thread.ident is None:
            self._close_clients()

    def status(self) -> dict[str, object]:
        """GET /status of PROTOCOL.md, plus `malformed`, `topic_ready` and `last_error`."""
        with self._state_lock:
            snapshot = self._tracker.snapshot()
            partitions = list(self._partitions)
            malformed, last_error = self._malformed, self._last_error
            lag, measured_at = self._measured_lag
        if time.monotonic() - measured_at > self._settings.lag_max_age_s:
            lag = None
        return {
            "last_seq": snapshot.last_seq,
            "received": snapshot.received,
            "applied": snapshot.applied,
            "duplicates": snapshot.duplicates,
            "gaps": [list(gap) for gap in snapshot.gaps],
            "out_of_order": snapshot.out_of_order,
            "lag": lag,
            "positions": snapshot.positions,
            "malformed": malformed,
            "topic_ready": bool(partitions),
            "last_error": last_error,
        }

    def _run(self) -> None:
        try:
            partitions = self._wait_for_topic()
            if not partitions:
                return
            topic = self._settings.topic
            self._consumer.assign(
                [TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions]
            )
            with self._state_lock:
                self._partitions = partitions
            while not self._stop.is_set():
                messages = self._consumer.consume(
                    num_messages=self._settings.batch_size, timeout=self._settings.poll_timeout_s
                )
                for message in messages:
                    self._handle(message)
        finally:
            self._close_clients()

    def _wait_for_topic(self) -> list[int]:
        """The topic's partitions once it exists; [] if stopped first."""
        while not self._stop.is_set():
            try:
                metadata = self._consumer.list_topics(
                    self._settings.topic, timeout=self._settings.metadata_timeout_s
                )
            except KafkaException as error:
                self._record_error(_kind_of(error.args[0]), f"metadata: {error}")
            else:
                topic = metadata.topics.get(self._settings.topic)
                if topic is not None and topic.error is None and topic.partitions:
                    return sorted(topic.partitions)
                self._record_error("topic_missing", f"topic {self._settings.topic} not there yet")
            self._stop.wait(self._settings.topic_retry_pause_s)
        return []

    def _handle(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            self._record_error(_kind_of(error), str(error))
            return
        execution: Execution | None = None
        # A bad message is counted below; it must not stop the stream.
        with contextlib.suppress(
            TypeError, UnicodeDecodeError, json.JSONDecodeError, MalformedExecutionError
        ):
            execution = parse_execution(json.loads(message.value()))
        with self._state_lock:
            self._reported_error_kinds.clear()  # reading works again: report the next outage
            self._next_offsets[message.partition()] = message.offset() + 1
            if execution is None:
                self._malformed += 1
            else:
                self._tracker.observe(execution)

    def _measure_lag(self) -> None:
        while not self._stop.wait(self._settings.lag_refresh_s):
            with self._state_lock:
                partitions, next_offsets = list(self._partitions), dict(self._next_offsets)
            lag = self._lag(partitions, next_offsets)
            if lag is not None:
                with self._state_lock:
                    self._measured_lag = (lag, time.monotonic())

    def _lag(self, partitions: list[int], next_offsets: dict[int, int]) -> int | None:
        """High watermark minus the next offset to read, summed; None if it cannot be known."""
        if not partitions:
            return None
        total = 0
        with self._watermark_lock:
            if self._watermark_client_closed:
                return None
            for partition in partitions:
                try:
                    watermarks = self._watermark_client.get_watermark_offsets(
                        TopicPartition(self._settings.topic, partition),
                        timeout=self._settings.watermark_timeout_s,
                    )
                except KafkaException:
                    return None
                if watermarks is None:
                    return None
                low, high = watermarks
                # Nothing read yet from this partition: reading starts at the low watermark.
                total += max(0, int(high) - next_offsets.get(partition, int(low)))
        return total

    def _client_config(self) -> dict[str, object]:
        return {
            "bootstrap.servers": self._settings.bootstrap,
            "group.id": self._settings.group,  # required; never joined, nothing is committed
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "allow.auto.create.topics": False,  # the engine side owns the topic's layout
            "reconnect.backoff.max.ms": 1000,
            # librdkafka logs each failed reconnect (many a second while Kafka is down);
            # error_cb reports each kind of error once instead.
            "log_level": 2,
            "log.connection.close": False,
            # The broker answers a fetch once 16 KiB are there or 20 ms have passed, not at
            # every produced batch: fewer, fuller fetches, at most 20 ms later.
            "fetch.wait.max.ms": 20,
            "fetch.min.bytes": 16384,
        }

    def _close_clients(self) -> None:
        """Called once, by the poll thread as it ends (or by stop() if it never started)."""
        self._consumer.close()
        with self._watermark_lock:
            if not self._watermark_client_closed:
                self._watermark_client_closed = True
                self._watermark_client.close()

    def _on_error(self, error: KafkaError) -> None:
        self._record_error(_kind_of(error), str(error))

    def _record_error(self, kind: str, text: str) -> None:
        with self._state_lock:
            self._last_error = text
            # Kafka being down repeats the same few errors many times a second.
            first_of_kind = kind not in self._reported_error_kinds
            self._reported_error_kinds.add(kind)
        if first_of_kind:
            print(f"consumer: kafka: {text}", file=sys.stderr, flush=True)


def _kind_of(error: object) -> str:
    return str(error.name()) if isinstance(error, KafkaError) else type(error).__name__
