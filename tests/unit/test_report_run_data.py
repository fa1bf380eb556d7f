from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.report.run_data import (
    NotARunError,
    fault_windows,
    leader_intervals,
    load_run,
    load_start_ns,
    phase_percentiles,
    throughput_per_s,
    trouble_span,
)
from harness.store.summary import RecoverySpan, write_summary
from tests.summaries import a_summary

MS = 1_000_000
S = 1_000_000_000


def probes(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["node", "arrival_ns", "role"])


def requests(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    """(intended_ns, end_ns, outcome) rows."""
    return pd.DataFrame(rows, columns=["intended_ns", "end_ns", "outcome"])


def test_leader_intervals_follow_runs_of_leader_samples() -> None:
    samples = probes(
        [
            ("n1", 0, "leader"),
            ("n2", 5, "follower"),
            ("n1", 10, "leader"),
            ("n1", 20, "unreachable"),
            ("n2", 30, "candidate"),
            ("n2", 40, "leader"),
            ("n1", 45, "follower"),
            ("n2", 50, "leader"),
        ]
    )
    intervals = [(i.node, i.start_ns, i.end_ns) for i in leader_intervals(samples)]
    # n1 leads until its first non-leader sample; n2's interval is still open at the end.
    assert intervals == [("n1", 0, 20), ("n2", 40, 50)]


def test_leader_intervals_of_nothing() -> None:
    assert leader_intervals(None) == []
    assert leader_intervals(probes([])) == []
    assert leader_intervals(probes([("n1", 0, "follower")])) == []


def faults(rows: list[tuple[int, int, str, str, int, str, str]]) -> pd.DataFrame:
    columns = ["fault_index", "repeat", "fault_type", "phase", "at_ns", "targets", "detail"]
    return pd.DataFrame(rows, columns=columns)


def test_fault_windows_pair_applied_with_healed() -> None:
    frame = faults(
        [
            (0, 0, "kill", "applied", 100, '["n1"]', '{"signal": "SIGKILL"}'),
            (1, 0, "partition", "applied", 150, '["n2", "n3"]', "{}"),
            (0, 0, "kill", "healed", 300, '["n1"]', '{"restarted": true}'),
        ]
    )
    kill, partition = fault_windows(frame)
    assert (kill.applied_ns, kill.healed_ns, kill.targets) == (100, 300, ("n1",))
    assert kill.detail == {"signal": "SIGKILL"} and kill.heal_detail == {"restarted": True}
    assert kill.label == "kill n1"
    assert partition.healed_ns is None  # never healed in the recorded history
    assert partition.label == "partition n2, n3"


def test_fault_windows_tolerate_bad_json_and_no_faults() -> None:
    assert fault_windows(None) == []
    (window,) = fault_windows(faults([(0, 0, "kill", "applied", 1, "not json", "[1]")]))
    assert window.targets == () and window.detail == {}


def test_phase_percentiles_split_acked_latency_by_intended_send() -> None:
    # Latency = end - intended: 1..4 ms before, 100 ms during, 2 ms after, plus a failure.
    frame = requests(
        [
            (0, 1 * MS, "acked"),
            (1, 1 + 2 * MS, "acked"),
            (2, 2 + 3 * MS, "acked"),
            (3, 3 + 4 * MS, "acked"),
            (10 * MS, 110 * MS, "acked"),
            (11 * MS, 500 * MS, "unknown"),
            (20 * MS, 22 * MS, "acked"),
        ]
    )
    before, during, after = phase_percentiles(frame, first_fault_ns=10 * MS, recovered_ns=20 * MS)
    assert (before.phase, before.count) == ("before", 4)
    assert before.values_ms["p50"] == pytest.approx(2.0)
    assert before.values_ms["max"] == pytest.approx(4.0)
    assert during.count == 1 and during.values_ms["p99.9"] == pytest.approx(100.0)
    assert after.count == 1 and after.values_ms["p90"] == pytest.approx(2.0)


def test_phase_percentiles_without_faults_or_recovery() -> None:
    frame = requests([(0, MS, "acked"), (5 * MS, 7 * MS, "acked")])
    before, during, after = phase_percentiles(frame, None, None)
    assert (before.count, during.count, after.count) == (2, 0, 0)
    assert during.values_ms["p50"] is None
    _, during, after = phase_percentiles(frame, first_fault_ns=MS, recovered_ns=None)
    assert (during.count, after.count) == (1, 0)
    assert [p.count for p in phase_percentiles(None, None, None)] == [0, 0, 0]


def test_trouble_span_is_the_summary_recovery_span() -> None:
    (window,) = fault_windows(faults([(0, 0, "kill", "applied", 10, "[]", "{}")]))
    recovered = RecoverySpan(first_fault_ns=10, recovered_ns=15, span_ms=5e-6)
    never = RecoverySpan(first_fault_ns=10, recovered_ns=None, span_ms=None)
    assert trouble_span([window], recovered, recovery_ms=2.0) == (10, 15)
    assert trouble_span([window], never, recovery_ms=None) == (10, None)
    assert trouble_span([], recovered, recovery_ms=None) == (10, 15)  # no fault history needed
    # A version-1 summary has no span: the last fault plus recovery_ms.
    assert trouble_span([window], None, recovery_ms=2.0) == (10, 10 + 2 * MS)
    assert trouble_span([window], None, None) == (10, None)


def test_throughput_counts_completions_per_second_by_outcome() -> None:
    frame = requests(
        [(0, S + 10 * MS, "acked"), (0, S + 20 * MS, "acked"), (0, S + 350 * MS, "error")]
    )
    rates = throughput_per_s(frame, origin_ns=S)
    assert list(rates.index) == [0.0, 0.1, 0.2, 0.3]  # empty bins in between are kept
    assert rates.loc[0.0, "acked"] == pytest.approx(20.0)
    assert rates.loc[0.3, "error"] == pytest.approx(10.0)
    assert rates.loc[0.1].sum() == 0
    assert throughput_per_s(None, 0).empty


def test_load_start_prefers_the_load_phase() -> None:
    phases = pd.DataFrame([("load", 50), ("load-done", 90)], columns=["name", "at_ns"])
    frame = requests([(40, 45, "acked")])
    assert load_start_ns(phases, frame) == 50
    assert load_start_ns(None, frame) == 40
    assert load_start_ns(None, None) is None


def test_load_run_reads_what_exists(tmp_path: Path) -> None:
    write_summary(tmp_path, a_summary(scenario="x"))
    requests([(0, 1, "acked")]).to_parquet(tmp_path / "requests.parquet")
    (tmp_path / "probes.parquet").write_text("truncated")  # an aborted run's partial file
    data = load_run(tmp_path)
    assert data.summary == a_summary(scenario="x") and data.scenario_text is None
    assert data.requests is not None and data.requests.rows == 1
    assert data.frame("probes") is None and data.frame("faults") is None


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        (None, "summary.json: missing"),
        ("{not json", "not readable JSON"),
        ("[]", "JSON object"),
        ('{"schema_version": 2}', "not a valid run summary: scenario: Field required"),
    ],
)
def test_load_run_rejects_what_is_not_a_run(
    tmp_path: Path, summary: str | None, message: str
) -> None:
    if summary is not None:
        (tmp_path / "summary.json").write_text(summary)
    with pytest.raises(NotARunError, match=message):
        load_run(tmp_path)
    with pytest.raises(NotARunError, match="no such run directory"):
        load_run(tmp_path / "absent")


def test_a_large_outcome_draws_its_slowest_requests_and_a_sample_of_the_rest() -> None:
    import numpy as np

    from harness.report.request_pieces import PointSampler

    latency = np.random.default_rng(3).lognormal(size=100_000)
    seconds = np.arange(100_000) / 1_000.0
    small = PointSampler(500, 1_000)
    small.add(seconds[:500], latency[:500])
    assert len(small.points()[0]) == 500  # all of them, when they fit
    sampler = PointSampler(100_000, 1_000)
    for begin in range(0, 100_000, 7_000):  # in pieces, as row groups come
        sampler.add(seconds[begin : begin + 7_000], latency[begin : begin + 7_000])
    drawn_seconds, drawn_latency = sampler.points()
    assert len(drawn_seconds) <= 1_000 and len(set(drawn_seconds.tolist())) == len(drawn_seconds)
    slowest = set(np.sort(latency)[-500:].tolist())
    assert slowest <= set(drawn_latency.tolist())  # no outlier hidden by the sample
    assert drawn_seconds.min() < 1 and drawn_seconds.max() > 99  # the body spans the run


def test_a_file_read_in_row_groups_gives_the_figures_of_the_whole_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from harness.history import History
    from harness.records import Outcome, RequestRecord
    from harness.report.request_pieces import RequestFile, last_end_ns
    from harness.results import write_history
    from harness.store import request_parquet

    rnd = random.Random(5)
    records = [
        RequestRecord(
            "new", f"c-{i}", S + i * MS, S + i * MS, S + i * MS + rnd.randint(1, 40) * MS,
            rnd.choice([Outcome.ACKED, Outcome.ACKED, Outcome.UNKNOWN, Outcome.REJECTED]),
        )
        for i in range(2_000)
    ]  # fmt: skip
    monkeypatch.setattr(request_parquet, "ROWS_PER_GROUP", 300)
    write_history(tmp_path, History(requests=records))
    opened = RequestFile.open(tmp_path / "requests.parquet")
    assert opened is not None and opened.rows == 2_000
    assert len(list(opened.pieces())) == 7
    whole = pd.read_parquet(tmp_path / "requests.parquet")
    split = (S + 500 * MS, S + 1_500 * MS)
    assert phase_percentiles(opened, *split) == phase_percentiles(whole, *split)
    pd.testing.assert_frame_equal(throughput_per_s(opened, S), throughput_per_s(whole, S))
    assert load_start_ns(None, opened) == S and last_end_ns(opened) == whole["end_ns"].max()


def test_the_summary_phases_are_the_figures_the_file_gives(tmp_path: Path) -> None:
    """The report takes its phase table from the summary: judging's figures over the run's
    requests must be the ones ranking requests.parquet again would give."""
    import random

    from harness.analysis import analyse
    from harness.history import History
    from harness.records import FaultEvent, Outcome, RequestRecord
    from harness.report.request_pieces import RequestFile
    from harness.report.run_data import summary_percentiles
    from harness.results import write_history
    from harness.scenario.model import Scenario
    from harness.store.summarise import _latency_by_phase

    answered = [Outcome.ACKED, Outcome.REJECTED]

    rnd = random.Random(11)

    def outcome(i: int) -> Outcome:  # an outage from 800 ms with a third still acked
        return Outcome.UNKNOWN if 800 <= i < 900 and i % 3 else rnd.choice(answered)

    records = [
        RequestRecord(
            "new", f"c-{i}", S + i * MS, S + i * MS, S + i * MS + rnd.randint(1, 400) * MS // 10,
            outcome(i),
        )
        for i in range(3_000)
    ]  # fmt: skip
    history = History(
        requests=records,
        faults=[FaultEvent(0, 0, "kill", "applied", S + 800 * MS, ("n1",))],
    )
    scenario = Scenario.model_validate({"name": "s", "load": {"rate_per_s": 1000, "duration_s": 3}})
    metrics = analyse(history, scenario)
    assert metrics.first_fault_ns is not None and metrics.recovered_ns is not None
    write_history(tmp_path, history)
    summary = a_summary().model_copy(update={"latency_by_phase": _latency_by_phase(metrics)})
    from_summary = summary_percentiles(summary)
    opened = RequestFile.open(tmp_path / "requests.parquet")
    assert from_summary is not None and all(p.count for p in from_summary)
    assert from_summary == phase_percentiles(opened, metrics.first_fault_ns, metrics.recovered_ns)


def test_a_summary_without_p90_has_its_phases_recomputed() -> None:
    from harness.report.run_data import summary_percentiles
    from harness.store.summary import LatencyByPhase, LatencyFigures

    old = LatencyFigures(count=3, p50_ms=1.0, p99_ms=2.0, p999_ms=2.0, max_ms=2.0)
    empty = LatencyFigures(count=0, p50_ms=None, p99_ms=None, p999_ms=None, max_ms=None)
    phases = LatencyByPhase(before=old, during=empty, after=empty)
    assert summary_percentiles(a_summary().model_copy(update={"latency_by_phase": phases})) is None
    assert summary_percentiles(a_summary().model_copy(update={"latency_by_phase": None})) is None


def test_the_first_and_last_instants_come_from_statistics_or_else_from_the_rows(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.report.request_pieces import RequestFile, first_intended_ns, last_end_ns

    frame = requests([(5 * S, 9 * S, "acked"), (2 * S, 3 * S, "unknown"), (4 * S, 11 * S, "x")])
    for statistics in (True, False):
        path = tmp_path / f"requests-{statistics}.parquet"
        table = pa.Table.from_pandas(frame)
        pq.write_table(table, path, row_group_size=2, write_statistics=statistics)
        opened = RequestFile.open(path)
        assert opened is not None and (opened.bounds("end_ns") is not None) is statistics
        assert (first_intended_ns(opened), last_end_ns(opened)) == (2 * S, 11 * S)
