from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.backends.base import RaftRole, RaftView
from harness.backends.fakes import FakeLeaderLookup
from harness.errors import BackendError
from harness.faults.selectors import resolve_target
from harness.paths import REFERENCE_TOPOLOGY
from harness.raft import leader_of
from harness.scenario.fault_fields import RoleSelector
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import Plan, make_plan


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


def reference_plan(toolchain: Toolchain, tmp_path: Path) -> Plan:
    return make_plan(load_topology(REFERENCE_TOPOLOGY), tmp_path, toolchain)


def test_leader_aware_selectors_follow_the_lookup(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    plan = reference_plan(fake_toolchain, tmp_path)
    lookup = FakeLeaderLookup()
    lookup.elect("n3", term=7, members=["n1", "n2", "n3"])
    chooser = random.Random(1)

    def select(selection: str) -> list[str]:
        target = RoleSelector.model_validate({"select": selection})
        return resolve_target(target, plan, lookup, chooser)

    assert select("leader") == ["n3"]
    assert select("follower") == ["n1"]
    assert select("random-follower")[0] in ("n1", "n2")
    assert select("minority") == ["n3"]  # one of three: the leader loses its quorum
    assert select("majority") == ["n3", "n1"]
    # Re-elected between two injections: the next selection follows the new leader.
    lookup.elect("n1", term=8, members=["n1", "n2", "n3"])
    assert select("leader") == ["n1"]
    assert select("follower") == ["n2"]


def test_a_stale_leader_is_not_selected(fake_toolchain: Toolchain, tmp_path: Path) -> None:
    """n2 was cut off in term 3 and still claims leadership; n1 leads in term 4."""
    plan = reference_plan(fake_toolchain, tmp_path)
    lookup = FakeLeaderLookup()
    lookup.elect("n1", term=4, members=["n1", "n3"])
    lookup.views["n2"] = RaftView("n2", RaftRole.LEADER, term=3, leader="n2")
    target = RoleSelector(select="leader")
    assert resolve_target(target, plan, lookup, random.Random(1)) == ["n1"]


def test_a_leader_aware_selector_without_a_leader_is_an_error(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    plan = reference_plan(fake_toolchain, tmp_path)
    target = RoleSelector(select="leader")
    with pytest.raises(BackendError, match="no engine leader at the moment of injection"):
        resolve_target(target, plan, FakeLeaderLookup(), random.Random(1))
    with pytest.raises(BackendError, match="needs a leader lookup"):
        resolve_target(target, plan, None, random.Random(1))


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


def test_only_a_follower_that_reports_its_role_age_under_an_answering_leader_is_relaxed() -> None:
    from harness.probes import relaxed
    from harness.records import ProbeSample

    def sample(
        node: str, role: str, term: int = 3, role_age_ms: float | None = 40.0
    ) -> ProbeSample:
        return ProbeSample(node, 0, True, role, term, None, role_age_ms=role_age_ms)

    leader = sample("n1", "leader")
    follower = sample("n2", "follower")
    assert relaxed(follower, [leader, follower])
    # Its election would be placed by when the probe saw it: full cadence.
    assert not relaxed(sample("n2", "follower", role_age_ms=None), [leader])
    # No leader answering in its term (gone, older, or not known yet): full cadence.
    assert not relaxed(follower, [follower])
    assert not relaxed(follower, [sample("n1", "leader", term=2), follower])
    assert not relaxed(follower, [ProbeSample("n1", 0, False), follower])
    # The leader and candidates are never relaxed.
    assert not relaxed(leader, [leader, follower])
    assert not relaxed(sample("n3", "candidate", term=4), [leader, follower])
