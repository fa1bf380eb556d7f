"""The bench's own logic: the document, regressions, when a rate counts as sustained, and how
the worker's records become figures. No process, no socket: the measurements themselves are
in `hftchaos bench`, not in tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.compare import compare_documents, judge_change
from benchmarks.compare import main as compare_main
from benchmarks.figures import BenchDocument, BenchEntry, Figure, load_document, write_document
from benchmarks.load_path import Point, climb, is_sustained, max_sustained, summarise_worker
from harness.errors import InputError
from harness.load.wire import UNSENT_REASON
from harness.records import Outcome, RequestRecord

MS = 1_000_000


def document(stamp: str, **values: float | None) -> BenchDocument:
    figures = [
        Figure(name=name, value=value, unit="x", better="higher" if "rate" in name else "lower")
        for name, value in values.items()
    ]
    entry = BenchEntry(status="ok", seconds=1.0, figures=figures)
    return BenchDocument(
        schema="hftchaos-bench/1",
        stamp=stamp,
        quick=False,
        seconds=1.0,
        conditions={"cores": 2},
        benchmarks={"load_path": entry},
    )


def test_a_figure_that_moved_the_wrong_way_beyond_the_tolerance_is_a_regression() -> None:
    lower = Figure(name="p99", value=10.0, unit="ms", better="lower")
    higher = Figure(name="rate", value=1000.0, unit="1/s", better="higher")
    assert judge_change(lower, lower.model_copy(update={"value": 12.0}), 0.15) == "regressed"
    assert judge_change(lower, lower.model_copy(update={"value": 11.0}), 0.15) == "same"
    assert judge_change(lower, lower.model_copy(update={"value": 5.0}), 0.15) == "improved"
    assert judge_change(higher, higher.model_copy(update={"value": 800.0}), 0.15) == "regressed"
    assert judge_change(higher, higher.model_copy(update={"value": 1300.0}), 0.15) == "improved"


def test_figures_without_direction_or_value_or_partner_are_never_regressions() -> None:
    plain = Figure(name="cores", value=2.0, unit="", better=None)
    assert judge_change(plain, plain.model_copy(update={"value": 64.0}), 0.15) == "not compared"
    measured = Figure(name="p99", value=10.0, unit="ms", better="lower")
    assert judge_change(measured, measured.model_copy(update={"value": None}), 0.1) == (
        "not compared"
    )
    assert judge_change(None, measured, 0.1) == "new"
    assert judge_change(measured, None, 0.1) == "gone"


def test_compare_lists_every_figure_of_both_documents() -> None:
    old = document("a", worker_max_rate=2000.0, p99_ms=10.0, dropped_ms=1.0)
    new = document("b", worker_max_rate=1000.0, p99_ms=10.5, added_ms=3.0)
    verdicts = {c.name: c.verdict for c in compare_documents(old, new, tolerance=0.15)}
    assert verdicts == {
        "worker_max_rate": "regressed",
        "p99_ms": "same",
        "added_ms": "new",
        "dropped_ms": "gone",
    }


def test_compare_command_exits_1_on_a_regression_and_0_without(tmp_path: Path) -> None:
    old = write_document(document("20260101T000000Z", p99_ms=10.0), tmp_path)
    worse = write_document(document("20260102T000000Z", p99_ms=20.0), tmp_path)
    same = write_document(document("20260103T000000Z", p99_ms=10.1), tmp_path)
    assert compare_main([str(old), str(worse)]) == 1
    assert compare_main([str(old), str(same)]) == 0


def test_a_bad_bench_document_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = write_document(document("20260101T000000Z", p99_ms=10.0), tmp_path)
    raw = json.loads(path.read_text())
    raw["benchmarks"]["load_path"]["figures"][0]["value"] = "fast"
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match=r"20260101T000000Z\.json: benchmarks\.load_path\.figures"):
        load_document(path)
    assert compare_main([str(path), str(path)]) == 2
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match=r"broken\.json: not JSON"):
        load_document(tmp_path / "broken.json")


def test_the_document_survives_a_round_trip(tmp_path: Path) -> None:
    original = document("20260101T000000Z", p99_ms=1.5, worker_max_rate=None)
    loaded = load_document(write_document(original, tmp_path))
    assert loaded == original
    assert loaded.figure("load_path", "p99_ms") == original.figure("load_path", "p99_ms")


def test_a_rate_is_sustained_only_when_sent_answered_and_quick() -> None:
    assert is_sustained(10_000, 9_900, 1.0, 5.0)
    assert not is_sustained(10_000, 9_000, 1.0, 5.0)  # fell behind the schedule
    assert not is_sustained(10_000, 10_000, 0.99, 5.0)  # sent, but not answered
    assert not is_sustained(10_000, 10_000, 1.0, 110.0)  # answered, 100 ms late
    assert not is_sustained(10_000, 10_000, 1.0, None)


def record(intended_ms: float, start_ms: float, end_ms: float, reason: str = "") -> RequestRecord:
    outcome = Outcome.ERROR if reason else Outcome.ACKED
    return RequestRecord(
        kind="new",
        client_order_id=f"o-{intended_ms}",
        intended_ns=int(intended_ms * MS),
        start_ns=int(start_ms * MS),
        end_ns=int(end_ms * MS),
        outcome=outcome,
        reason=reason,
    )


def test_worker_figures_count_unsent_slots_as_failures_and_measure_from_intended() -> None:
    # 100/s for 1 s: slot k due at 10 k ms; every send 2 ms late, answered 1 ms later
    records = [record(10 * k, 10 * k + 2, 10 * k + 3) for k in range(90)]
    records += [record(10 * k, 1000, 1000, UNSENT_REASON) for k in range(90, 100)]
    point = summarise_worker(100, records, 0, 100, own_s=0.01, children_s=0.1)
    assert point.sent == 90
    assert point.success_ratio == 0.9
    assert point.p99_lateness_ms == pytest.approx(2.0)
    assert point.p99_latency_ms == pytest.approx(3.0)  # from intended, not from the late send
    assert point.cpu_us_per_request == pytest.approx(0.1 * 1e6 / 90, abs=0.1)
    assert not point.sustained


def point(generator: str, rate: int, sustained: bool) -> Point:
    return Point(
        generator=generator,
        rate_per_s=rate,
        sent_per_s=float(rate) if sustained else rate / 2,
        success_ratio=1.0,
        p99_latency_ms=1.0,
        p50_latency_ms=0.5,
        p99_lateness_ms=None,
        cpu_us_per_request=None,
        harness_cpu_us_per_request=None,
        sent=rate,
    )


def test_each_generator_climbs_until_two_misses_in_a_row() -> None:
    limits = {"vegeta": 5, "worker": 2}
    measured: list[tuple[str, int]] = []

    def measure_one(generator: str, rate: int) -> Point:
        measured.append((generator, rate))
        return point(generator, rate, rate <= limits[generator])

    points = list(climb((1, 2, 3, 4, 5, 6, 7, 8), measure_one))
    assert [rate for generator, rate in measured if generator == "worker"] == [1, 2, 3, 4]
    assert [rate for generator, rate in measured if generator == "vegeta"] == [1, 2, 3, 4, 5, 6, 7]
    assert max_sustained(points, "worker") == 2
    assert max_sustained(points, "vegeta") == 5


def test_an_order_rate_meets_the_goal_only_with_every_order_answered_within_20_ms() -> None:
    from benchmarks.order_path import RatePoint

    assert RatePoint(500, 5000, 0, 2.0, 19.9).meets_goal
    assert not RatePoint(500, 5000, 1, 2.0, 5.0).meets_goal  # one error or unknown is a miss
    assert not RatePoint(500, 5000, 0, 2.0, 20.1).meets_goal
    assert not RatePoint(500, 0, 0, None, None).meets_goal  # nothing measured
    assert RatePoint(500, 5000, 0, 2.0, 300.0).keeps_up  # slow, but every order answered
    assert not RatePoint(500, 5000, 1, 2.0, 5.0).keeps_up
    assert not RatePoint(500, 0, 0, None, None).keeps_up


def test_the_order_path_climbs_through_slow_rates_and_stops_after_two_that_fall_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from benchmarks import order_path
    from benchmarks.order_path import RatePoint

    # rate -> (not answered, p99 ms): fast, slow, slow, behind, slow, behind, behind, never run
    outcomes = {1: (0, 5.0), 2: (0, 80.0), 3: (0, 90.0), 4: (3, 900.0), 5: (0, 95.0)}
    outcomes |= {6: (7, 1000.0), 7: (9, 2000.0), 8: (0, 1.0)}
    measured: list[int] = []

    def fake_rate_point(
        _gateway: str, rate: int, _duration_s: float, _scratch: Path, _read: object
    ) -> RatePoint:
        measured.append(rate)
        lost, p99 = outcomes[rate]
        return RatePoint(rate, 100, lost, 1.0, p99)

    monkeypatch.setattr(order_path, "rate_point", fake_rate_point)
    monkeypatch.setattr(order_path, "profiling_wanted", lambda: False)
    points, flames = order_path.climb("gw", tuple(outcomes), 1.0, tmp_path, dict, lambda _: [])
    assert measured == [1, 2, 3, 4, 5, 6, 7]
    assert flames == []
    assert [p.rate_per_s for p in points if p.meets_goal] == [1]
    assert [p.rate_per_s for p in points if p.keeps_up] == [1, 2, 3, 5]


def test_cpu_per_order_is_each_process_s_own_use_largest_first_and_a_gone_one_left_out() -> None:
    from benchmarks.order_path import per_order_us

    before = {"n1": 1.0, "gateway": 2.0, "gone": 5.0}
    after = {"n1": 1.5, "gateway": 2.1, "new": 9.0}
    assert per_order_us(before, after, 1000) == {"n1": 500.0, "gateway": 100.0}
    assert list(per_order_us(before, after, 1000)) == ["n1", "gateway"]
    assert per_order_us(before, after, 0) == {}


def test_failover_fidelity_is_the_harness_election_minus_the_engine_s_own_after_the_kill(
    tmp_path: Path,
) -> None:
    from benchmarks.failover import fidelity_ms, logged_elections, percentile
    from harness.metrics import Failover

    (tmp_path / "n1.log").write_text(
        "ROLE n1 leader term=1 leader=n1 mono_ns=1000000000 wall_ns=5\n"
        "ROLE n1 follower term=2 leader=n2 mono_ns=3000000000 wall_ns=6\n"
    )
    (tmp_path / "n2.log").write_text(
        "ROLE n2 follower term=1 leader=n1 mono_ns=900000000 wall_ns=1\n"
        "ROLE n2 leader term=2 leader=n2 mono_ns=2200000000 wall_ns=7\n"
        "ROLE n2 leader term=4 leader=n2 mono_ns=9000000000 wall_ns=8\n"
    )
    elections = logged_elections(tmp_path)
    assert elections == {
        ("n1", 1): 1_000_000_000,
        ("n2", 2): 2_200_000_000,
        ("n2", 4): 9_000_000_000,
    }
    # Killed at 2.0 s; the harness placed n2's election 0.4 ms after n2's own stamp.
    killed = Failover(0, 0, "n1", 1, 2_000_000_000, "n2", 2_200_400_000)
    assert fidelity_ms(killed, elections) == 0.4
    # A leader no ROLE line names after the kill, or no new leader: nothing to compare.
    assert (
        fidelity_ms(Failover(0, 1, "n2", 4, 9_500_000_000, "n3", 9_600_000_000), elections) is None
    )
    assert fidelity_ms(Failover(0, 2, "n2", 4, 9_500_000_000), elections) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([], 0.99) is None
