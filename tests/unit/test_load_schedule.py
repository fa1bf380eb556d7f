from __future__ import annotations

import io
import itertools
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from harness.errors import BackendError
from harness.load import wire
from harness.load.driver import (
    LoadDriver,
    Topology,
    load_topology,
    master_command,
    worker_command,
)
from harness.load.orderflow import FlowStep, OrderFlow, client_order_id, format_price, outcome_of
from harness.load.schedule import (
    CLAIM_GRACE_NS,
    Share,
    SlotSchedule,
    slot_count,
    slot_time_ns,
)
from harness.records import Outcome, RequestBatch, RequestRecord
from harness.scenario.model import LoadProfile

START = 1_000_000_000_000


# -- the slot schedule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "duration", "expected"),
    [(200, 3, 600), (0.1 * 3, 10, 3), (1000, 0.001, 1), (7, 0.1, 0), (333.3, 3, 999)],
)
def test_slot_count_is_rate_times_duration_rounded_down(
    rate: float, duration: float, expected: int
) -> None:
    assert slot_count(rate, duration) == expected


def test_slot_times_are_evenly_spaced_from_the_start() -> None:
    times = [slot_time_ns(START, 200, k) for k in range(600)]
    assert times[0] == START
    assert {b - a for a, b in itertools.pairwise(times)} == {5_000_000}


def test_slot_times_do_not_drift_at_rates_that_do_not_divide_a_second() -> None:
    assert slot_time_ns(START, 3, 3_000) == START + 1_000 * 1_000_000_000
    assert slot_time_ns(START, 7, 1) == START + 142_857_143


def test_claims_hand_out_each_slot_once_in_order_and_stop_at_the_bound() -> None:
    schedule = SlotSchedule(START, rate_per_s=100, duration_s=1)
    slots = []
    while (slot := schedule.claim(START)) is not None:
        slots.append(slot)
    assert [s.index for s in slots] == list(range(100))
    assert slots[-1].intended_ns == START + 990_000_000 < schedule.end_ns
    assert schedule.claimed == schedule.total == 100
    assert schedule.claim(START) is None


def test_a_late_claim_still_gets_the_slot_with_its_intended_time() -> None:
    schedule = SlotSchedule(START, rate_per_s=100, duration_s=1)
    schedule.claim(START)
    slot = schedule.claim(START + 500_000_000)  # half a second behind
    assert slot is not None
    assert slot.intended_ns == START + 10_000_000


def test_a_slot_due_before_the_end_is_still_sent_just_after_it() -> None:
    schedule = SlotSchedule(START, rate_per_s=100, duration_s=1)
    slot = schedule.claim(schedule.end_ns + CLAIM_GRACE_NS - 1)
    assert slot is not None and slot.intended_ns == START


def test_no_slot_is_handed_out_once_the_schedule_has_ended() -> None:
    schedule = SlotSchedule(START, rate_per_s=100, duration_s=1)
    assert schedule.claim(schedule.end_ns + CLAIM_GRACE_NS) is None
    assert schedule.claim(START) is None  # closed for good
    assert schedule.claimed == 0


def test_close_stops_the_schedule() -> None:
    schedule = SlotSchedule(START, rate_per_s=100, duration_s=1)
    schedule.close()
    assert schedule.claim(START) is None


# -- the order flow ----------------------------------------------------------------------------


def steps(seed: int, count: int = 2_000) -> list[FlowStep]:
    flow = OrderFlow(["ACME", "GLOBEX"], accounts=4, mid_price=100.0, seed=seed, cancel_ratio=0.1)
    return [flow.next() for _ in range(count)]


def test_the_same_seed_gives_the_same_flow_and_another_seed_another() -> None:
    assert steps(7) == steps(7)
    assert steps(7) != steps(8)


def test_orders_are_on_the_tick_with_quantity_accounts_and_symbols_in_range() -> None:
    flow = OrderFlow(["ACME", "GLOBEX"], accounts=3, mid_price=101.237, seed=1)
    for _ in range(2_000):
        order = flow.next().order
        price = Decimal(order.price)
        assert price == price.quantize(Decimal("0.01"))
        assert price * 100 == order.price_ticks
        assert 1 <= order.quantity <= 10
        assert order.account in {"acct-1", "acct-2", "acct-3"}
        assert order.symbol in {"ACME", "GLOBEX"}
        assert order.side in {"buy", "sell"}


def test_crossing_orders_are_priced_through_the_mid_and_passive_ones_away_from_it() -> None:
    flow = OrderFlow(["ACME"], accounts=2, mid_price=100.0, seed=3, cross_ratio=0.3)
    orders = [flow.next().order for _ in range(10_000)]
    crossing = [o for o in orders if o.crossing]
    assert abs(len(crossing) / len(orders) - 0.3) < 0.02
    for order in orders:
        through = order.price_ticks - order.mid_ticks
        if order.side == "sell":
            through = -through
        assert (through >= 0) == order.crossing


def test_crossing_buys_and_sells_meet_resting_orders_of_the_other_side() -> None:
    flow = OrderFlow(["ACME"], accounts=2, mid_price=100.0, seed=4, cross_ratio=0.3)
    orders = [flow.next().order for _ in range(5_000)]
    best_resting_sell = min(o.price_ticks for o in orders if o.side == "sell" and not o.crossing)
    assert any(o.price_ticks >= best_resting_sell for o in orders if o.side == "buy")


def test_the_mid_moves_slowly_and_stays_inside_the_band() -> None:
    flow = OrderFlow(["ACME"], accounts=2, mid_price=100.0, seed=5, band_pct=2.0)
    mids = [flow.next().order.mid_ticks for _ in range(50_000)]
    assert all(abs(b - a) <= 1 for a, b in itertools.pairwise(mids))
    assert len(set(mids)) > 20  # it does move
    assert min(mids) >= 9_800 and max(mids) <= 10_200


def test_cancel_steps_follow_the_cancel_ratio() -> None:
    flow = OrderFlow(["ACME"], accounts=2, mid_price=100.0, seed=6, cancel_ratio=0.1)
    cancels = sum(flow.next().cancel for _ in range(10_000))
    assert 850 < cancels < 1_150
    never = OrderFlow(["ACME"], accounts=2, mid_price=100.0, seed=6, cancel_ratio=0.0)
    assert not any(never.next().cancel for _ in range(1_000))


def test_prices_never_go_below_one_tick() -> None:
    flow = OrderFlow(["PENNY"], accounts=2, mid_price=0.02, seed=9)
    assert all(flow.next().order.price_ticks >= 1 for _ in range(1_000))


def test_price_format_and_client_order_ids() -> None:
    assert format_price(10125) == "101.25"
    assert format_price(5) == "0.05"
    assert client_order_id("r1", 3, 17) == "r1-3-17"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.ACKED),
        (422, Outcome.REJECTED),
        (503, Outcome.ERROR),
        (504, Outcome.UNKNOWN),
        (None, Outcome.UNKNOWN),
        (500, Outcome.ERROR),
        (404, Outcome.ERROR),
    ],
)
def test_outcome_from_http_status(status: int | None, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


# -- the line protocol and the worker's command line ---------------------------------------------


def test_records_survive_the_line_protocol_in_batches() -> None:
    records = [
        RequestRecord("new", "r-1-1", 10, 11, 25, Outcome.UNKNOWN, None, "timed out", 2, 0),
        RequestRecord("cancel", "r-1-1", 12, 13, 14, Outcome.ACKED, 200, "", 2, 3),
    ]
    line = wire.records_line([wire.record_row(record) for record in records])
    assert line.endswith("\n") and line.count("\n") == 1
    assert '"unknown"' in line
    parsed = wire.parse_line(line)
    assert isinstance(parsed, wire.Batch) and parsed.malformed == []
    assert list(parsed.requests) == records


def test_notices_are_told_apart_from_records() -> None:
    summary = wire.parse_line(wire.notice_line(wire.SUMMARY_KIND, {"requests": 3}))
    assert summary == wire.Notice("summary", {"requests": 3})
    started = wire.parse_line(wire.notice_line(wire.STARTED_KIND, {"start_ns": 5}))
    assert started == wire.Notice("started", {"start_ns": 5})


@pytest.mark.parametrize(
    "line",
    [b"not json", b"[1, 2]", b'{"kind": "new"}', b'{"kind": "records", "rows": 3}'],
)
def test_malformed_lines_raise_value_error(line: bytes) -> None:
    with pytest.raises(ValueError):
        wire.parse_line(line)


GOOD_ROW = ["new", "a", 1, 1, 2, "acked", 200, "", 0, 0]


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        (GOOD_ROW[:-1], "10 fields"),
        ([*GOOD_ROW[:2], "1", *GOOD_ROW[3:]], "intended_ns: expected int"),
        ([*GOOD_ROW[:2], True, *GOOD_ROW[3:]], "intended_ns: expected int"),
        ([*GOOD_ROW[:5], "maybe", *GOOD_ROW[6:]], "outcome: not one of"),
        ([*GOOD_ROW[:6], "200", *GOOD_ROW[7:]], "http_status: expected int"),
    ],
)
def test_a_bad_row_is_refused_and_the_rest_of_its_batch_kept(
    row: list[object], complaint: str
) -> None:
    batch = wire.parse_line(json.dumps({"kind": "records", "rows": [GOOD_ROW, row, GOOD_ROW]}))
    assert isinstance(batch, wire.Batch)
    assert len(batch.requests) == 2 and list(batch.requests) == [wire.parse_row(GOOD_ROW)] * 2
    assert len(batch.malformed) == 1 and complaint in batch.malformed[0]


def test_master_command_carries_the_whole_profile_and_the_workers() -> None:
    profile = LoadProfile(rate_per_s=250, duration_s=12, users=1, symbols=["A", "B"])
    topology = Topology(local_workers=2, remote_workers=3, bind="0.0.0.0:7000")
    command = master_command("127.0.0.1:9000", profile, "run7", 42, topology)
    assert command[:3] == [sys.executable, "-m", "harness.load.master"]
    assert "--rate=250.0" in command
    assert "--symbols=A,B" in command
    assert "--id-prefix=run7" in command
    assert "--seed=42" in command
    assert "--gateway=127.0.0.1:9000" in command
    assert "--workers=5" in command and "--bind=0.0.0.0:7000" in command
    assert "--users=5" in command  # at least one sender per worker
    assert worker_command(topology.master_address)[-1] == "--master=127.0.0.1:7000"


def test_the_load_topology_comes_from_the_environment_with_clear_errors() -> None:
    default = load_topology({})
    assert default.local_workers == (os.cpu_count() or 1) and default.remote_workers == 0
    # Without a choice, one worker per 1,000 requests/s of the schedule, at most one per core.
    assert load_topology({}, rate_per_s=200).local_workers == 1
    assert load_topology({}, rate_per_s=1e6).local_workers == (os.cpu_count() or 1)
    assert load_topology({"HFTCHAOS_LOAD_WORKERS": "3"}, rate_per_s=200).local_workers == 3
    assert default.bind.startswith("127.0.0.1:")
    chosen = load_topology(
        {
            "HFTCHAOS_LOAD_WORKERS": "1",
            "HFTCHAOS_LOAD_REMOTE_WORKERS": "4",
            "HFTCHAOS_LOAD_BIND": "10.0.0.5:5557",
        }
    )
    assert chosen == Topology(1, 4, "10.0.0.5:5557")
    with pytest.raises(BackendError, match="HFTCHAOS_LOAD_WORKERS='two'"):
        load_topology({"HFTCHAOS_LOAD_WORKERS": "two"})
    with pytest.raises(BackendError, match="HFTCHAOS_LOAD_BIND='nowhere'"):
        load_topology({"HFTCHAOS_LOAD_BIND": "nowhere"})


def test_the_reader_counts_malformed_lines_and_survives_a_failing_listener(
    tmp_path: Path,
) -> None:
    received: list[RequestRecord] = []

    def listener(requests: RequestBatch) -> None:
        received.extend(requests)
        if len(received) == 1:
            raise RuntimeError("a listener bug")

    profile = LoadProfile(rate_per_s=1, duration_s=1)
    driver = LoadDriver("127.0.0.1:1", profile, "r", 0, listener, tmp_path / "load.log")
    record = RequestRecord("new", "r-1-1", 1, 2, 3, Outcome.ACKED, 200)
    row = wire.record_row(record)
    lines = [
        wire.notice_line(wire.STARTED_KIND, {"start_ns": 123}),
        wire.records_line([row]),
        "garbage\n",
        "\n",
        wire.records_line([row, ["bad"]]),
        '{"kind": "new"}\n',
        wire.notice_line(
            wire.SUMMARY_KIND, {"requests": 2, "stopped_by": "completed", "something_new": 1}
        ),
    ]
    driver._read(io.BytesIO("".join(lines).encode()))
    summary = driver.wait(timeout_s=1)  # never started: just the counts
    assert driver.wait_started(timeout_s=0) == 123
    assert received == [record, record]
    assert summary.received == 2
    assert summary.malformed_lines == 3
    assert summary.listener_errors == 1
    assert summary.complete and summary.requests == 2 and summary.stopped_by == "completed"
    assert summary.exit_code is None


def test_shares_split_one_schedule_exactly() -> None:
    whole = SlotSchedule(start_ns=7, rate_per_s=300, duration_s=1)
    expected = [slot for slot in iter(lambda: whole.claim(0), None)]
    for count in (1, 2, 3, 7):
        shares = [SlotSchedule(7, 300, 1, Share(index, count)) for index in range(count)]
        assert sum(share.total for share in shares) == 300
        claimed = [slot for share in shares for slot in iter(lambda s=share: s.claim(0), None)]
        assert sorted(claimed, key=lambda slot: slot.index) == expected
    with pytest.raises(ValueError, match="share 2 of 2"):
        Share(2, 2)


def test_unclaimed_slots_are_the_offered_load_never_sent() -> None:
    from harness.load.schedule import SlotSchedule

    schedule = SlotSchedule(start_ns=0, rate_per_s=100, duration_s=1)
    for _ in range(30):
        assert schedule.claim(now_ns=0) is not None
    unsent = schedule.unclaimed(due_before_ns=2_000_000_000)
    assert [slot.index for slot in unsent] == list(range(30, 100))
    assert unsent[0].intended_ns == 300_000_000
    # Stopped early at 0.5 s: only what was already due counts as not absorbed.
    assert len(schedule.unclaimed(due_before_ns=500_000_000)) == 20
