"""The column store of a run's requests: every field comes back exactly, whatever its size,
and the figures judged from columns are the ones the plain definitions over records give."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from harness.clock_anchor import ClockAnchor
from harness.history import History
from harness.metrics import (
    NS_PER_MS,
    LatencySummary,
    error_counts,
    latency_by_phase,
    nearest_rank,
    outages,
)
from harness.records import Outcome, RequestRecord
from harness.request_log import (
    REORDER_REACH,
    IntColumn,
    JoinedRequests,
    RequestLog,
    join_id,
    split_id,
)
from harness.results import write_history

OUTCOMES = list(Outcome)
REASONS = ["", "timeout", "HTTP 503 from 127.0.0.1:8080", "no leader"]


def random_records(count: int, seed: int = 7, in_order: bool = False) -> list[RequestRecord]:
    rnd = random.Random(seed)
    records = []
    intended = 10**15
    for index in range(count):
        intended += rnd.randint(0, 400_000) if in_order else rnd.randint(-300_000, 400_000)
        start = intended + rnd.choice([0, rnd.randint(1, 5_000_000), -rnd.randint(1, 1000)])
        outcome = rnd.choice(OUTCOMES)
        records.append(
            RequestRecord(
                kind=rnd.choice(["new", "cancel", "GET /book"]),
                client_order_id=rnd.choice(
                    [f"run-{rnd.randint(0, 300)}-{index}", f"x{index:06d}", "plain", f"9{index}"]
                ),
                intended_ns=intended,
                start_ns=start,
                end_ns=start + rnd.choice([rnd.randint(0, 30_000_000), 40 * 10**9]),
                outcome=outcome,
                http_status=None if outcome is Outcome.UNKNOWN else rnd.choice([200, 409, 503]),
                reason="" if outcome is Outcome.ACKED else rnd.choice(REASONS),
                user=rnd.randint(0, 300),
                fills=rnd.randint(0, 3),
            )
        )
    return records


def in_intended_order(records: list[RequestRecord]) -> list[RequestRecord]:
    return sorted(records, key=lambda r: r.intended_ns)  # stable: ties in arrival order


def test_records_come_back_exactly_in_intended_order_and_by_index() -> None:
    records = in_intended_order(random_records(3_000))
    log = RequestLog(random_records(3_000))  # out of order by less than REORDER_REACH
    assert len(log) == len(records)
    assert list(log) == records
    assert log[0] == records[0] and log[-1] == records[-1] and log[10:13] == records[10:13]
    with pytest.raises(IndexError):
        log[len(records)]


@pytest.mark.parametrize(
    "value", [0, -1, 127, 128, -129, 2**15, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)]
)
def test_a_column_widens_for_any_64_bit_value(value: int) -> None:
    column = IntColumn("b", [1, -1])
    column.append(value)
    assert list(column.values) == [1, -1, value]


def test_a_value_beyond_64_bits_is_refused() -> None:
    with pytest.raises(OverflowError):
        IntColumn().append(2**64)


def test_extreme_fields_survive() -> None:
    extreme = [
        RequestRecord("new", "a-0", 0, -(2**40), 2**62, Outcome.ERROR, -7, "x", 2**40, 2**33),
        RequestRecord("", "", 5, 5, 5, Outcome.REJECTED, 0, "", -3, -1),
        RequestRecord("new", "o-00012", 9, 9, 9, Outcome.ACKED, None, "", 0, 0),
        RequestRecord("new", "n-" + "9" * 30, 9, 9, 9, Outcome.ACKED, 2**40, "", 0, 0),
        RequestRecord("new", "ends-with-dash-", 9, 9, 9, Outcome.UNKNOWN, None, "é ✓", 0, 0),
    ]
    assert list(RequestLog(extreme)) == extreme


@pytest.mark.parametrize(
    "identifier", ["run-3-17", "o-00012", "0", "00", "x0", "plain", "", "9" * 19, "a1b2"]
)
def test_an_id_splits_and_joins_back(identifier: str) -> None:
    assert join_id(*split_id(identifier)) == identifier


def test_a_request_a_little_late_goes_to_its_place_and_ties_keep_arrival_order() -> None:
    records = random_records(2_000)
    records += [records[5], records[5]]  # equal instants keep their order of arrival
    log = RequestLog(records)
    assert log.in_intended_order() is log
    assert list(log) == in_intended_order(records)


def test_a_request_far_out_of_order_is_put_in_place_when_judged() -> None:
    records = random_records(REORDER_REACH + 500, in_order=True)
    late = replace(records[0], client_order_id="late-1", intended_ns=records[0].intended_ns + 1)
    log = RequestLog([*records, late])
    assert log[-1] == late  # beyond reach: appended as it came
    assert list(log.in_intended_order()) == in_intended_order([*records, late])
    assert log[1] == late
    log.append(records[-1])  # in order again: goes on at the end
    assert log[-1] == records[-1]


def test_iterating_while_another_thread_appends_sees_whole_records() -> None:
    records = random_records(20_000)  # out of order: appends insert
    log = RequestLog()
    seen: list[list[RequestRecord]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(list(log))

    reader = threading.Thread(target=read)
    reader.start()
    for record in records:
        log.append(record)
    done.set()
    reader.join()
    appended = set(records)
    assert seen
    for snapshot in seen:  # whole records, in intended order, however the appends went
        assert all(record in appended for record in snapshot)
        assert snapshot == in_intended_order(snapshot)


def test_history_keeps_requests_as_columns() -> None:
    records = random_records(100)
    history = History(requests=records)  # a list, as tests give, becomes a log
    assert isinstance(history.requests, RequestLog)
    assert list(history.requests) == in_intended_order(records)


def test_parquet_holds_every_field_and_utc_twins(tmp_path: Path) -> None:
    records = random_records(5_000)
    history = History(requests=records)
    anchor = ClockAnchor(monotonic_ns=10**15, utc_ns=1_800_000_000 * 10**9, uncertainty_ns=1)
    write_history(tmp_path, history, warmup_requests=records[:10], anchor=anchor)
    frame = pd.read_parquet(tmp_path / "requests.parquet")
    back = [
        RequestRecord(
            row.kind,
            row.client_order_id,
            row.intended_ns,
            row.start_ns,
            row.end_ns,
            Outcome(row.outcome),
            None if pd.isna(row.http_status) else int(row.http_status),
            row.reason,
            row.user,
            row.fills,
        )
        for row in frame.itertuples()
    ]
    assert back == in_intended_order(records)
    shift = anchor.utc_ns - anchor.monotonic_ns
    assert (frame["end_utc_ns"] - frame["end_ns"] == shift).all()
    assert len(pd.read_parquet(tmp_path / "warmup_requests.parquet")) == 10


def test_parquet_of_no_requests_has_the_columns(tmp_path: Path) -> None:
    write_history(tmp_path, History())
    frame = pd.read_parquet(tmp_path / "requests.parquet")
    assert len(frame) == 0 and "client_order_id" in frame.columns


# The figures as their definitions say, over records one at a time: the oracle for the
# column arithmetic that replaced them.


def plain_outages(records: list[RequestRecord]) -> list[tuple[int, int]]:
    intervals, start, last_failure_end = [], None, 0
    for record in sorted(records, key=lambda r: r.intended_ns):
        if not record.available:
            start = record.intended_ns if start is None else start
            last_failure_end = max(last_failure_end, record.end_ns)
        elif start is not None:
            intervals.append((start, record.intended_ns))
            start = None
    if start is not None:
        intervals.append((start, max(last_failure_end, start)))
    return intervals


def plain_summary(records: list[RequestRecord]) -> LatencySummary:
    ms = sorted(r.latency_ns / NS_PER_MS for r in records if r.outcome is Outcome.ACKED)
    if not ms:
        return LatencySummary(0, None, None, None, None, None)
    return LatencySummary(
        len(ms),
        nearest_rank(ms, 0.5),
        nearest_rank(ms, 0.9),
        nearest_rank(ms, 0.99),
        nearest_rank(ms, 0.999),
        ms[-1],
    )


def plain_errors(records: list[RequestRecord]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for record in records:
        if record.outcome is not Outcome.ACKED:
            reason = re.sub(r"[\d.:]+\d", "#", record.reason)[:60] if record.reason else ""
            counts[f"{record.outcome.value}:{reason}" if reason else record.outcome.value] += 1
    return dict(counts)


@pytest.mark.parametrize("seed", range(6))
def test_column_figures_equal_the_definitions(seed: int) -> None:
    records = random_records(1_500, seed=seed)
    assert outages(records) == plain_outages(records)
    assert LatencySummary.of(RequestLog(records)) == plain_summary(records)
    assert LatencySummary.of(iter(records)) == plain_summary(records)
    assert error_counts(records) == plain_errors(records)
    ordered = sorted(records, key=lambda r: r.intended_ns)
    fault, recovered = ordered[400].intended_ns, ordered[900].intended_ns
    phases = latency_by_phase(records, fault, recovered)
    assert phases.before == plain_summary([r for r in records if r.intended_ns < fault])
    assert phases.during == plain_summary(
        [r for r in records if fault <= r.intended_ns < recovered]
    )
    assert phases.after == plain_summary([r for r in records if r.intended_ns >= recovered])
    never = latency_by_phase(records, fault, None)
    assert never.during == plain_summary([r for r in records if r.intended_ns >= fault])
    assert never.after.count == 0


def test_a_run_all_failed_or_all_answered_has_the_defined_outages() -> None:
    failed = [r for r in random_records(300) if not r.available]
    answered = [r for r in random_records(300) if r.available]
    assert outages(failed) == plain_outages(failed) and len(outages(failed)) == 1
    assert outages(answered) == [] and outages([]) == []


def test_joined_requests_read_as_one_without_a_copy() -> None:
    first = in_intended_order(random_records(50, seed=1))
    second = in_intended_order(random_records(70, seed=2))
    joined = JoinedRequests(RequestLog(first), (), RequestLog(second))
    assert len(joined) == 120 and list(joined) == first + second
    assert joined[49] == first[49] and joined[50] == second[0] and joined[-1] == second[-1]
    assert joined[48:52] == first[48:] + second[:2]
    with pytest.raises(IndexError):
        joined[120]
    history = History(requests=joined)
    assert history.requests is joined
    with pytest.raises(TypeError, match="joined"):
        history.record(first[0])
