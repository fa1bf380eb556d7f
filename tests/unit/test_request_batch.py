"""The load's batches of requests: every listener of the bus takes a batch as it would take
its requests one by one (the Locust load publishes only batches)."""

from __future__ import annotations

import io

from rich.console import Console

from harness.abort import AbortWatch
from harness.history import EventBus, History
from harness.live import LiveView
from harness.load import wire
from harness.records import RequestBatch
from harness.request_log import RequestLog
from harness.scenario.model import AbortConditions, ErrorRateAbort
from tests.unit.test_request_log import in_intended_order, random_records


def batches_of(records: list, size: int) -> list[RequestBatch]:  # type: ignore[type-arg]
    rows = [wire.record_row(record) for record in records]
    return [RequestBatch(rows[i : i + size]) for i in range(0, len(rows), size)]


def test_a_batch_reads_back_as_its_records() -> None:
    records = random_records(50)
    (batch,) = batches_of(records, 50)
    assert len(batch) == 50 and list(batch) == records


def test_rows_put_in_the_log_are_the_records_appended_one_by_one() -> None:
    records = random_records(5_000, seed=3)  # out of order, every kind of field and width
    one_by_one = RequestLog(records)
    by_rows = RequestLog()
    for batch in batches_of(records, 250):
        by_rows.extend_rows(batch.rows)
    assert list(by_rows) == list(one_by_one) == in_intended_order(records)
    assert by_rows.nbytes() == one_by_one.nbytes()
    mixed = RequestLog()
    mixed.record(batches_of(records[:10], 10)[0])
    for record in records[10:20]:
        mixed.record(record)
    assert list(mixed) == in_intended_order(records[:20])


def test_the_history_the_abort_watch_and_the_live_view_take_batches() -> None:
    records = random_records(400, seed=5)
    conditions = AbortConditions(error_rate=ErrorRateAbort(above=0.99, for_s=1))

    def fed(publish_batches: bool) -> tuple[History, AbortWatch, LiveView]:
        bus, history = EventBus(), History()
        watch = AbortWatch(conditions, lambda _reason: None)
        view = LiveView(Console(file=io.StringIO()), "t", lambda: None)
        for listener in (history.record, watch.listen, view.listen):
            bus.subscribe(listener)
        for batch in batches_of(records, 64):
            if publish_batches:
                bus.publish(batch)
            else:
                for record in batch:
                    bus.publish(record)
        assert bus.failures == []
        return history, watch, view

    (history, watch, view), (history_1, watch_1, view_1) = fed(True), fed(False)
    assert list(history.requests) == list(history_1.requests) == in_intended_order(records)
    assert list(watch._answers) == list(watch_1._answers) and len(watch._answers) == 400
    assert view._outcomes == view_1._outcomes and sum(view._outcomes.values()) == 400
    assert list(view._recent) == list(view_1._recent)
