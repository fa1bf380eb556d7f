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
