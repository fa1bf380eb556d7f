from __future__ import annotations

from harness.backends.base import RaftRole, RaftView
from harness.backends.fakes import FakeLeaderLookup
from harness.raft import leader_of


def test_leader_of_prefers_the_highest_term_when_two_nodes_claim_leadership() -> None:
    views = {
        "n1": RaftView("n1", RaftRole.LEADER, term=3, leader="n1"),  # isolated, stale
        "n2": RaftView("n2", RaftRole.LEADER, term=4, leader="n2"),
        "n3": RaftView("n3", RaftRole.FOLLOWER, term=4, leader="n2"),
    }
    assert leader_of(views) == "n2"


def test_no_leader_when_nobody_claims_it() -> None:
    views = {
        "n1": RaftView("n1", RaftRole.CANDIDATE, term=2),
        "n2": RaftView("n2", RaftRole.UNREACHABLE),
    }
    assert leader_of(views) is None


def test_fake_lookup_elects() -> None:
    lookup = FakeLeaderLookup()
    lookup.elect("n3", term=7, members=["n1", "n2", "n3"])
    assert lookup.leader() == "n3"
    assert lookup.raft_views()["n1"].leader == "n3"


def test_election_watch_polls_fast_from_leader_loss_until_a_newer_leader() -> None:
    from harness.probes import ElectionWatch
    from harness.records import ProbeSample

    def sample(at_ms: int, role: str | None, term: int = 1) -> ProbeSample:
        if role is None:
            return ProbeSample(node="n1", arrival_ns=at_ms * 1_000_000, reachable=False)
        return ProbeSample(
            node="n1", arrival_ns=at_ms * 1_000_000, reachable=True, role=role, term=term
        )

    watch = ElectionWatch()
    assert not watch.observe(None, sample(0, "leader"))
    assert not watch.observe(sample(0, "leader"), sample(5, "leader"))
    assert watch.observe(sample(5, "leader"), sample(10, None))  # the leader is gone
    assert watch.observe(sample(10, None), sample(11, None))  # still gone: keep polling fast
    assert watch.observe(None, sample(12, "leader", term=1))  # not a newer term yet
    assert not watch.observe(None, sample(200, "leader", term=2))  # elected: back to cadence
    # A member that stays unreachable does not start another burst.
    assert not watch.observe(sample(11, None), sample(300, None))


def test_election_watch_gives_up_after_the_burst_limit() -> None:
    from harness.probes import BURST_MAX_S, ElectionWatch
    from harness.records import ProbeSample

    watch = ElectionWatch()
    leader = ProbeSample(node="n1", arrival_ns=0, reachable=True, role="leader", term=1)
    assert watch.observe(leader, ProbeSample(node="n1", arrival_ns=1, reachable=False))
    later = int(BURST_MAX_S * 1e9) + 10
    assert not watch.observe(None, ProbeSample(node="n2", arrival_ns=later, reachable=False))
