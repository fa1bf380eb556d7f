"""Every leadership loss counts, from recorded probe samples: re-elections of the same node
too, in each cluster, and a slow status path is no loss."""

from __future__ import annotations

import dataclasses

from harness.leadership import all_losses, leadership_losses
from harness.records import FaultEvent, ProbeSample
from harness.status_timing import precision_warnings, status_timing

MS = 1_000_000


def sample(
    at_ms: float, node: str, role: str | None, term: int = 1, cluster: str = "engine"
) -> ProbeSample:
    at = int(at_ms * MS)
    if role is None:
        return ProbeSample(node=node, arrival_ns=at, reachable=False, sent_ns=at, cluster=cluster)
    return ProbeSample(
        node=node,
        arrival_ns=at,
        reachable=True,
        role=role,
        term=term,
        sent_ns=at - MS // 2,
        cluster=cluster,
    )


def test_the_same_node_winning_a_newer_term_is_a_loss_with_its_leaderless_time() -> None:
    samples = [
        sample(0, "n1", "leader", 1),
        sample(1, "n2", "follower", 1),
        sample(10, "n1", "candidate", 2),  # packet loss: it lost its quorum, starts an election
        sample(12, "n2", "follower", 2),
        sample(40, "n1", "leader", 2),  # and wins it again
    ]
    [loss] = leadership_losses("engine", samples)
    assert (loss.old_leader, loss.new_leader, loss.new_term) == ("n1", "n1", 2)
    assert loss.same_node and loss.sign == "newer-term"  # its own answer moved to term 2
    # From the middle of the candidate answer's request to the middle of the leading one's.
    assert loss.leaderless_ms == 30.0
    # The loss may have come any time after n1's last answer as leader (arrived at 0 ms), so
    # its error bound holds that whole bracket as well as the election's.
    assert loss.election is not None and loss.loss_bracket_ns == 9.75 * MS
    assert loss.error_bound_ns == loss.loss_bracket_ns + loss.election.error_bound_ns


def test_an_unanswered_poll_is_no_loss_unless_a_newer_term_follows() -> None:
    flaky = [
        sample(0, "n1", "leader", 1),
        sample(5, "n1", None),  # a lost status answer
        sample(10, "n1", "leader", 1),  # still leading in term 1
    ]
    assert leadership_losses("engine", flaky) == []
    killed = [
        sample(0, "n1", "leader", 1),
        sample(5, "n1", None),
        sample(20, "n2", "candidate", 2),
        sample(50, "n2", "leader", 2),
    ]
    [loss] = leadership_losses("engine", killed)
    assert (loss.sign, loss.lost_ns, loss.new_leader) == ("unreachable", 5 * MS, "n2")
    # From 5 ms to the middle of n2's own bracket: candidate sent at 19.5, leader at 50.
    assert loss.leaderless_ms == 29.75


def test_a_fault_aimed_at_the_leader_starts_its_loss() -> None:
    samples = [
        sample(0, "n1", "leader", 1),
        sample(30, "n2", "candidate", 2),
        sample(60, "n2", "leader", 2),
    ]
    fault = FaultEvent(0, 0, "partition", "applied", 8 * MS, targets=("n1",))
    [loss] = leadership_losses("engine", samples, [fault])
    assert (loss.sign, loss.fault_index, loss.lost_ns) == ("fault", 0, 8 * MS)
    assert loss.loss_bracket_ns == 0  # the fault's start places it exactly


def test_a_fault_still_being_applied_while_the_leader_answers_starts_its_loss() -> None:
    """Packet loss takes ~40 ms to apply (its rules one by one), and the leader answered as
    leader 40 ms after the fault began: the fault, in force at 45 ms, still started the loss,
    which begins at that last answer, not at the fault's first instant."""
    samples = [
        sample(0, "n1", "leader", 1),
        sample(48, "n1", "leader", 1),  # between the first rule and the last
        sample(200, "n1", None),
        sample(3000, "n1", "leader", 3),  # wins again, after the heal
    ]
    fault = FaultEvent(
        0, 0, "packet_loss", "applied", 8 * MS, targets=("n1",), detail={"in_force_ns": 50 * MS}
    )
    [loss] = leadership_losses("engine", samples, [fault])
    assert (loss.sign, loss.fault_index, loss.lost_ns) == ("fault", 0, 48 * MS)
    assert loss.same_node
    # Without the instant it was in force, the fault began before that last answer: no link.
    [unlinked] = leadership_losses("engine", samples, [dataclasses.replace(fault, detail={})])
    assert (unlinked.sign, unlinked.fault_index) == ("unreachable", None)


def test_each_cluster_has_its_own_losses_and_an_open_one_is_kept() -> None:
    samples = [
        sample(0, "a1", "leader", 3, cluster="orders"),
        sample(0, "b1", "leader", 7, cluster="risk"),
        sample(10, "b1", "follower", 7, cluster="risk"),  # stepped down, nobody leads yet
        sample(20, "a1", "leader", 3, cluster="orders"),
    ]
    [loss] = all_losses(samples)
    assert (loss.cluster, loss.old_leader, loss.new_leader, loss.leaderless_ms) == (
        "risk",
        "b1",
        None,
        None,
    )


def test_a_slow_status_endpoint_is_said_to_make_failover_less_precise() -> None:
    slow = [
        ProbeSample("n1", arrival_ns=(i + 1) * 41 * MS, reachable=True, sent_ns=i * 41 * MS)
        for i in range(20)
    ]
    [timing] = status_timing(slow)
    assert timing.round_trip_p99_ms == 41.0 and timing.implied_error_ms == 42.0
    [warning] = precision_warnings([timing], 5)
    assert "42.0 ms" in warning and "failover_precision_ms" in warning
    assert precision_warnings([timing], 50) == []


def test_a_cluster_selector_naming_no_cluster_is_a_file_line_error(tmp_path: object) -> None:
    from pathlib import Path

    import pytest

    from harness.errors import ScenarioError
    from harness.scenario.loader import load_scenario

    assert isinstance(tmp_path, Path)
    (tmp_path / "topology.yaml").write_text(
        "name: two-clusters\nservices:\n"
        + "".join(
            f"  {n}: {{role: node, host: 127.0.0.{i + 20}, ports: [http], command: [none],\n"
            f"       raft: {{cluster: {c}, url: 'http://${{self.address.http}}/s'}}}}\n"
            for i, (n, c) in enumerate([("a1", "orders"), ("a2", "orders"), ("b1", "risk")])
        )
    )
    (tmp_path / "s.yaml").write_text(
        "name: s\ntopology: topology.yaml\nload: {rate_per_s: 10, duration_s: 20}\n"
        "faults:\n  - {type: kill, at_s: 3, target: {cluster: risk, select: leader}}\n"
        "  - {type: kill, at_s: 4, target: {cluster: riks, select: leader}}\n"
    )
    with pytest.raises(ScenarioError) as error:
        load_scenario(tmp_path / "s.yaml")
    message = str(error.value)
    assert "s.yaml:6" in message and "no Raft cluster 'riks'" in message
    assert "clusters: orders, risk" in message and "faults.0" not in message
