"""The reference system's safety checks (targets/reference/checks/) on small hand-built
histories and final states: for each one a valid case, an invalid one with the evidence it must
name, and an unknown one; and the reference target as the harness sees it.

Final states are built by applying real commands to the engine's state machine, so statuses,
executions, orders and journals agree with each other the way a real replica's do.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest
from pysyncobj.journal import FileJournal

from harness.checks import GENERIC_PATH, Target, load_target, run_check, run_checks
from harness.cli import main
from harness.history import History
from harness.paths import REFERENCE_TARGET, REFERENCE_TOPOLOGY
from harness.records import Outcome, PhaseMark, RequestRecord
from harness.scenario.model import CHECKS as SCENARIO_CHECKS
from harness.store.summary import TargetFacts, write_summary
from harness.topology.loader import load_topology
from harness.verdicts import Verdict
from targets.reference.bugs import ENVIRONMENT_VARIABLE, UnknownBugError, active_bugs
from targets.reference.checks import CHECKS, TARGET
from targets.reference.checks.collect import load_final_state, save_final_state
from targets.reference.checks.deterministic_replay import deterministic_replay
from targets.reference.checks.kafka_gap_free import kafka_gap_free
from targets.reference.checks.model import FinalState, NodeFinal, seq_ranges
from targets.reference.checks.monotonic_timestamps import monotonic_timestamps
from targets.reference.checks.no_double_fills import no_double_fills
from targets.reference.checks.no_lost_acks import no_lost_acks
from targets.reference.checks.replay import replay_report, replay_run
from targets.reference.checks.replicas_identical import replicas_identical
from targets.reference.engine.commands import CancelOrder, NewOrder, encode
from targets.reference.engine.journal import JournalEntry
from targets.reference.engine.orderbook import Side
from targets.reference.engine.state import EngineState
from tests.summaries import a_summary

NS_PER_MS = 1_000_000


def new(order_id: str, side: str, quantity: int = 5, ts_ms: int = 1, price: int = 10000) -> str:
    return encode(
        NewOrder(order_id, f"acct-{side}", "ACME", Side(side), price, quantity, ts_ms * NS_PER_MS)
    )


def cancel(order_id: str, ts_ms: int = 1) -> str:
    return encode(CancelOrder(order_id, ts_ms * NS_PER_MS))


BASE = [new("s1", "sell", ts_ms=1), new("b1", "buy", ts_ms=2)]  # one execution, seq 1


def replica(
    name: str,
    commands: list[str],
    role: str = "follower",
    term: int = 1,
    bugs: frozenset[str] = frozenset(),
) -> NodeFinal:
    entries = [JournalEntry(index, term, text) for index, text in enumerate(commands, start=1)]
    state = EngineState(bugs)
    for entry in entries:
        state.apply(entry.raft_index, entry.text)
    status = {
        "node_id": name,
        "role": role,
        "term": term,
        "last_applied": state.last_index,
        "state_hash": state.state_hash(),
        "state_hash_index": state.last_index,
        "last_exec_seq": state.last_exec_seq,
        "published_seq": state.last_exec_seq,
    }
    orders = {str(o["client_order_id"]): o for o in state.order_records(1, 10_000)}
    executions = state.execution_records(1, state.last_exec_seq)
    return NodeFinal(name, status, executions, orders, entries)


def final_state(
    commands: list[str] = BASE, nodes: dict[str, NodeFinal] | None = None, **changes: object
) -> FinalState:
    if nodes is None:
        nodes = {
            name: replica(name, commands, "leader" if name == "n1" else "follower")
            for name in ("n1", "n2", "n3")
        }
    executions = nodes["n1"].executions
    final = FinalState(
        nodes=nodes,
        kafka=list(enumerate(executions)),
        consumer={"lag": 0, "gaps": [], "duplicates": 0, "applied": len(executions)},
        leaders_by_term={1: "n1"},
    )
    return dataclasses.replace(final, **changes)  # type: ignore[arg-type]


def unreachable(final: FinalState, name: str) -> FinalState:
    nodes = dict(final.nodes)
    nodes[name] = NodeFinal(name, problem="GET http://127.0.0.13:1/status: connection refused")
    return dataclasses.replace(final, nodes=nodes)


def acked(order_id: str, fills: int = 0, kind: str = "new", at_ms: int = 10) -> RequestRecord:
    at_ns = at_ms * NS_PER_MS
    return RequestRecord(
        kind, order_id, at_ns, at_ns, at_ns + NS_PER_MS, Outcome.ACKED, 200, "", 0, fills
    )


def history(*records: RequestRecord) -> History:
    recorded = History()
    recorded.record(PhaseMark("load", 0))
    for record in records:
        recorded.record(record)
    return recorded


SENT = history(acked("s1"), acked("b1", fills=1))


def text(violations: list[str]) -> str:
    return "\n".join(violations)


# -- no_lost_acks ------------------------------------------------------------------------------


def test_no_lost_acks_valid_when_every_ack_is_everywhere_with_its_fills() -> None:
    result = no_lost_acks(SENT, final_state())
    assert result.verdict is Verdict.VALID, result
    assert result.counts["acked_orders"] == 2
    assert result.counts["nodes_checked"] == 3


def test_no_lost_acks_names_the_lost_order_its_nodes_and_wrong_fills() -> None:
    sent = history(acked("s1"), acked("b1", fills=2), acked("ghost", at_ms=1500))
    result = no_lost_acks(sent, final_state())
    assert result.verdict is Verdict.INVALID
    assert "order ghost acked at +1.501 s is missing on n1, n2, n3" in result.violations
    assert "order b1 acked with 2 fill(s), but n1, n2, n3 hold(s) 1" in result.violations
    assert result.counts["missing_orders"] == 1
    assert result.counts["fill_mismatches"] == 1


def test_no_lost_acks_an_acked_cancel_must_close_the_order() -> None:
    sent = history(acked("s1"), acked("b1", fills=1), acked("s2"), acked("s2", kind="cancel"))
    result = no_lost_acks(sent, final_state([*BASE, new("s2", "sell")]))
    assert result.verdict is Verdict.INVALID
    assert result.violations == ["cancel of s2 acked, but the order is still new on n1, n2, n3"]
    closed = no_lost_acks(sent, final_state([*BASE, new("s2", "sell"), cancel("s2")]))
    assert closed.verdict is Verdict.VALID


def test_no_lost_acks_unknown_for_an_unreachable_or_lagging_node() -> None:
    result = no_lost_acks(SENT, unreachable(final_state(), "n3"))
    assert result.verdict is Verdict.UNKNOWN
    assert "n3 could not be read" in result.explanation
    nodes = {
        "n1": replica("n1", BASE, "leader"),
        "n2": replica("n2", BASE),
        "n3": replica("n3", BASE[:1]),
    }
    lagging = no_lost_acks(SENT, final_state(nodes=nodes))
    assert lagging.verdict is Verdict.UNKNOWN  # b1 is missing on n3, which is still behind
    assert "n3 was not checked: it applied up to index 1, 1 entries behind" in lagging.explanation
    assert no_lost_acks(history(), final_state()).verdict is Verdict.UNKNOWN


# -- no_double_fills ---------------------------------------------------------------------------


def test_no_double_fills_valid() -> None:
    result = no_double_fills(SENT, final_state())
    assert result.verdict is Verdict.VALID, result
    assert result.counts["executions"] == 1


def test_no_double_fills_finds_an_order_nobody_sent_that_repeats_one() -> None:
    commands = [*BASE, new("s2", "sell"), new("b1~again", "buy", ts_ms=3)]
    sent = history(acked("s1"), acked("b1", fills=1), acked("s2"))
    result = no_double_fills(sent, final_state(commands))
    assert result.verdict is Verdict.INVALID
    assert result.violations == [
        "order b1~again executed in seq 2, but no client sent it; it repeats b1 "
        "(same account, symbol, side, price, quantity) (on n1, n2, n3)"
    ]
    assert result.counts["unrequested_orders"] == 1


def test_no_double_fills_finds_reused_seqs_overfills_and_two_kafka_versions() -> None:
    final = final_state()
    node = final.nodes["n2"]
    node.executions = [*node.executions, dict(node.executions[0])]
    final.kafka = [(0, final.nodes["n1"].executions[0]), (1, {**node.executions[0], "price": 1})]
    result = no_double_fills(SENT, final)
    assert result.verdict is Verdict.INVALID
    assert "execution seq 1 is used twice (on n2)" in result.violations
    assert "order b1 (quantity 5) is filled 10 in seq 1 (on n2)" in result.violations
    assert "Kafka seq 1 carries 2 different executions (offsets 0; 1)" in result.violations
    assert result.counts["reused_seqs"] == 1


def test_no_double_fills_unknown_without_replicas() -> None:
    final = unreachable(unreachable(unreachable(final_state(), "n1"), "n2"), "n3")
    result = no_double_fills(SENT, final)
    assert result.verdict is Verdict.UNKNOWN
    assert "no engine node could be read" in result.explanation


# -- replicas_identical ------------------------------------------------------------------------


def test_replicas_identical_valid() -> None:
    result = replicas_identical(SENT, final_state())
    assert result.verdict is Verdict.VALID, result
    assert result.counts["distinct_hashes"] == 1


def test_replicas_identical_names_the_odd_replica_and_where_it_parted() -> None:
    nodes = {
        "n1": replica("n1", BASE, "leader"),
        "n2": replica("n2", BASE),
        "n3": replica("n3", [new("s1", "sell", quantity=6), new("b1", "buy", quantity=6, ts_ms=2)]),
    }
    result = replicas_identical(SENT, final_state(nodes=nodes))
    assert result.verdict is Verdict.INVALID
    found = text(result.violations)
    assert f"state hashes differ at applied index 2: n1, n2 {nodes['n1'].state_hash[:12]}" in found  # type: ignore[index]
    assert "execution seq 1 differs on n3 from n1, n2: quantity 6 vs 5" in found
    assert "order b1 differs: n1, n2: quantity 5 filled 5 filled; n3: quantity 6" in found
    assert result.counts["differing_orders"] == 2


def test_replicas_identical_unknown_when_a_replica_is_behind_or_unreachable() -> None:
    nodes = {
        "n1": replica("n1", BASE, "leader"),
        "n2": replica("n2", BASE),
        "n3": replica("n3", BASE[:1]),
    }
    behind = replicas_identical(SENT, final_state(nodes=nodes))
    assert behind.verdict is Verdict.UNKNOWN
    assert "n3 is 1 entry behind (applied index 1, others 2)" in behind.explanation
    assert behind.counts["max_entries_behind"] == 1
    down = replicas_identical(SENT, unreachable(final_state(), "n2"))
    assert down.verdict is Verdict.UNKNOWN
    assert "n2 could not be read" in down.explanation


def test_replicas_read_on_either_side_of_an_election_say_so() -> None:
    from targets.reference.checks.collect import terms_moved

    nodes = {
        "n1": replica("n1", BASE, "leader", term=1),
        "n2": replica("n2", BASE[:1], term=1),
        "n3": replica("n3", BASE, "leader", term=2),
    }
    moved = terms_moved(nodes)
    assert "n1 in term 1, n2 in term 1, n3 in term 2" in moved
    result = replicas_identical(SENT, final_state(nodes=nodes, read_problem=moved))
    assert result.verdict is Verdict.UNKNOWN
    assert "an election between the reads" in result.explanation
    assert terms_moved({name: replica(name, BASE) for name in ("n1", "n2")}) == ""


# -- kafka_gap_free ----------------------------------------------------------------------------


THREE_TRADES = [
    new("s1", "sell", quantity=15),
    new("b1", "buy", ts_ms=2),
    new("b2", "buy", ts_ms=3),
    new("b3", "buy", ts_ms=4),
]


def test_kafka_gap_free_valid_with_duplicates_and_out_of_order_reported() -> None:
    final = final_state(THREE_TRADES)
    one, two, three = final.nodes["n1"].executions
    final.kafka = [(0, one), (1, three), (2, two), (3, three)]
    final.consumer = {"lag": 0, "gaps": [], "duplicates": 1, "applied": 3}
    result = kafka_gap_free(SENT, final)
    assert result.verdict is Verdict.VALID, result
    assert result.counts["duplicates"] == 1
    assert result.counts["out_of_order"] == 1
    assert "1 duplicate(s), valid since consumers deduplicate by seq (seq 3 again at offset 3)" in (
        result.explanation
    )
    assert "1 out of order (seq 2 at offset 2 after seq 3)" in result.explanation


def test_kafka_gap_free_names_the_missing_seqs_and_where_the_topic_jumps() -> None:
    final = final_state(THREE_TRADES)
    one, _, three = final.nodes["n1"].executions
    final.kafka = [(0, one), (1, {**three, "ts_ns": three["ts_ns"] + NS_PER_MS})]
    final.consumer = {"lag": 0, "gaps": [[2, 2]], "duplicates": 0, "applied": 2}
    result = kafka_gap_free(SENT, final)
    assert result.verdict is Verdict.INVALID
    assert result.violations[0] == (
        "execution seq 2 never reached Kafka (seq 1 is at offset 0, seq 3 at offset 1)"
    )
    assert (
        "Kafka offset 1 (seq 3) differs from n1's: ts_ns 5000000 (Kafka) vs 4000000 (n1) "
        "(+1.000 ms)" in result.violations
    )
    assert "the consumer reports gaps 2" in result.violations
    assert result.counts["missing_seqs"] == 1


def test_kafka_gap_free_unknown_when_the_topic_cannot_be_read() -> None:
    result = kafka_gap_free(SENT, final_state(kafka=None, kafka_problem="broker down"))
    assert result.verdict is Verdict.UNKNOWN
    assert "the topic could not be read: broker down" in result.explanation


# -- deterministic_replay ----------------------------------------------------------------------


def test_deterministic_replay_valid() -> None:
    result = deterministic_replay(SENT, final_state())
    assert result.verdict is Verdict.VALID, result
    assert result.counts == {"nodes_replayed": 3, "commands_replayed": 2, "mismatched_nodes": 0}


def test_deterministic_replay_names_the_node_and_the_first_differing_execution() -> None:
    final = final_state()
    clocked = replica("n2", BASE, bugs=frozenset({"wall_clock_in_apply"}))
    final.nodes["n2"] = clocked
    result = deterministic_replay(SENT, final)
    assert result.verdict is Verdict.INVALID
    (violation,) = result.violations
    assert violation.startswith(
        f"n2: replaying 2 journaled commands (to index 2) gives state hash "
        f"{final.nodes['n1'].state_hash[:12]}, the node reports {clocked.state_hash[:12]}; "  # type: ignore[index]
        "first difference at execution seq 1: ts_ns 2000000 (replay) vs "
    )


def test_deterministic_replay_unknown_without_a_journal() -> None:
    final = final_state()
    final.nodes["n3"].journal = None
    final.nodes["n3"].journal_problem = "no such file"
    result = deterministic_replay(SENT, final)
    assert result.verdict is Verdict.UNKNOWN
    assert "n3: journal not read (no such file)" in result.explanation


# -- monotonic_timestamps ----------------------------------------------------------------------


BACKWARDS = [
    new("s1", "sell", quantity=10, ts_ms=5),
    new("b1", "buy", ts_ms=6),
    new("b2", "buy", ts_ms=2),  # a leader whose clock is 4 ms behind
]


def test_monotonic_timestamps_valid_and_reports_what_the_guard_held() -> None:
    final = final_state(BACKWARDS)
    final.leaders_by_term = {1: "n2"}
    result = monotonic_timestamps(SENT, final)
    assert result.verdict is Verdict.VALID, result
    assert result.counts["held_by_guard"] == 1
    assert "by up to 4.0 ms (stamped by leader n2 in term 1)" in result.explanation


def test_monotonic_timestamps_names_the_step_back_its_order_term_and_leader() -> None:
    nodes = {
        name: replica(name, BACKWARDS, term=3, bugs=frozenset({"unguarded_timestamps"}))
        for name in ("n1", "n2", "n3")
    }
    result = monotonic_timestamps(SENT, final_state(nodes=nodes, leaders_by_term={3: "n2"}))
    assert result.verdict is Verdict.INVALID
    assert result.violations == [
        "execution seq 2 (order b2) is 4.000 ms earlier than seq 1; stamped at raft index 3 by "
        "leader n2 in term 3 (on n1, n2, n3)"
    ]


def test_monotonic_timestamps_unknown_for_an_unreachable_node() -> None:
    result = monotonic_timestamps(SENT, unreachable(final_state(), "n1"))
    assert result.verdict is Verdict.UNKNOWN
    assert "n1 could not be read (GET http://127.0.0.13:1/status: connection refused)" in (
        result.explanation
    )


# -- registry, persistence, replay -------------------------------------------------------------


def test_registry_matches_the_scenario_names_and_a_crash_is_unknown() -> None:
    assert set(CHECKS) == set(SCENARIO_CHECKS)
    assert TARGET.checks is CHECKS
    results = run_checks(TARGET, SCENARIO_CHECKS, SENT, final_state())
    assert [r.verdict for r in results] == [Verdict.VALID] * len(SCENARIO_CHECKS)
    broken = final_state()
    broken.nodes["n1"].executions = [{"seq": 1, "ts_ns": 1}, {"seq": 2, "ts_ns": "late"}]
    crashed = run_check(TARGET, "monotonic_timestamps", SENT, broken)
    assert crashed.verdict is Verdict.UNKNOWN
    assert crashed.explanation.startswith("the check failed: ValueError")
    missing = run_check(TARGET, "no_such_check", SENT, broken)
    assert missing.verdict is Verdict.NOT_APPLICABLE
    assert "target reference provides no check 'no_such_check'" in missing.explanation


def test_the_reference_topologies_name_the_reference_target() -> None:
    assert isinstance(TARGET, Target)
    assert load_target(REFERENCE_TARGET) is TARGET
    for name in ("topology.yaml", "topology-kafka3.yaml"):
        loaded = load_topology(REFERENCE_TOPOLOGY.parent / name)
        assert loaded.topology.target == REFERENCE_TARGET
        assert loaded.target() is TARGET


def test_final_state_survives_a_save_and_load(tmp_path: Path) -> None:
    final = dataclasses.replace(unreachable(final_state(), "n3"), read_problem="term moved")
    TARGET.save_final_state(tmp_path, final)
    assert load_final_state(tmp_path) == TARGET.load_final_state(tmp_path)
    loaded = TARGET.load_final_state(tmp_path)
    for name, node in final.nodes.items():
        assert dataclasses.replace(node, journal=None) == loaded.nodes[name]
    assert loaded.kafka == final.kafka
    assert loaded.leaders_by_term == final.leaders_by_term
    assert loaded.consumer == final.consumer
    assert loaded.read_problem == "term moved"


def write_journal(path: Path, commands: list[str]) -> None:
    path.parent.mkdir(parents=True)
    journal = FileJournal(str(path))
    journal.add(b"\x01", 1, 1)  # a new leader's no-op
    for index, command in enumerate(commands, start=2):
        journal.add(b"\x00" + pickle.dumps((0, (command,))), index, 1)
    journal.setRaftCommitIndex(len(commands) + 1)
    journal.onOneSecondTimer()
    journal._destroy()


def recorded_run(tmp_path: Path) -> None:
    """Journals of n1 and n2 and a final state in which n2 reported a wrong state hash."""
    nodes = {}
    for name in ("n1", "n2"):
        write_journal(tmp_path / "services" / name / "raft.journal", BASE)
        node = replica(name, [])
        state = EngineState()
        for index, command in enumerate(BASE, start=2):
            state.apply(index, command)
        node.status = {
            **(node.status or {}),
            "state_hash": state.state_hash(),
            "state_hash_index": 3,
        }
        node.executions = state.execution_records(1, 10)
        nodes[name] = node
    nodes["n2"].status = {**(nodes["n2"].status or {}), "state_hash": "f" * 64}
    save_final_state(tmp_path, final_state(nodes=nodes))


def test_replay_run_reproduces_the_recorded_hashes(tmp_path: Path) -> None:
    recorded_run(tmp_path)
    rows = replay_run(tmp_path)
    assert [(r.node, r.entries, r.match, r.executions_match) for r in rows] == [
        ("n1", 2, True, True),
        ("n2", 2, False, True),
    ]
    assert rows[0].replayed_hash == rows[0].recorded_hash
    assert rows[1].recorded_hash == "f" * 64
    report = TARGET.replay(tmp_path)  # what `hftchaos replay` prints
    assert report == replay_report(tmp_path)
    assert [row[0] for row in report.rows] == ["n1", "n2"]
    assert [row[4:] for row in report.rows] == [(True, True), (False, True)]
    assert not report.matched


def test_the_replay_command_asks_the_target_the_run_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded_run(tmp_path)
    assert main(["replay", str(tmp_path)]) == 1  # n2 differs
    output = " ".join(capsys.readouterr().out.split())
    assert f"no target recorded for this run: replaying as {REFERENCE_TARGET}" in output
    assert "DIFFERS" in output and "match" in output
    write_summary(tmp_path, a_summary(target=TargetFacts(object_path=REFERENCE_TARGET)))
    assert main(["replay", str(tmp_path)]) == 1
    assert "no target recorded" not in capsys.readouterr().out
    assert main(["replay", str(tmp_path), "--target", GENERIC_PATH]) == 2
    assert "target generic has no replay" in capsys.readouterr().err
    assert main(["replay", str(tmp_path), "--target", "nowhere:TARGET"]) == 2
    assert "cannot import nowhere" in capsys.readouterr().err


def test_replay_run_without_a_recorded_state_only_reports(tmp_path: Path) -> None:
    write_journal(tmp_path / "services" / "n1" / "raft.journal", BASE)
    (row,) = replay_run(tmp_path)
    assert row.match is None
    assert row.entries == 2
    assert "no final_state.json" in row.problem
    report = TARGET.replay(tmp_path)
    assert not report.matched  # nothing to compare with is no match
    assert report.notes == [f"n1: {row.problem}"]


def test_seq_ranges() -> None:
    assert seq_ranges([7, 1, 2, 3, 3]) == [(1, 3), (7, 7)]
    assert seq_ranges([]) == []


def test_bug_switches_are_off_unless_named_and_a_typo_is_refused() -> None:
    assert active_bugs({}) == frozenset()
    assert active_bugs({ENVIRONMENT_VARIABLE: " ack_before_commit, diverge_replica ,"}) == {
        "ack_before_commit",
        "diverge_replica",
    }
    with pytest.raises(UnknownBugError, match="unknown bug ack_before_comit; known: "):
        active_bugs({ENVIRONMENT_VARIABLE: "ack_before_comit"})
