"""Pre-vote on three real engine processes: a follower cut off by a real iptables partition
neither raises its term nor, once healed, deposes the leader.

Without pre-vote (PySyncObj's own elections) the cut-off follower stands once per election
timeout, its term climbs by one each time, and on the heal its RequestVote of the higher term
makes the leader step down: a new election, and downtime no fault on the leader caused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.local.network import inject_partition
from tests.integration.netfilter_run import netfilter_run
from tests.integration.test_engine_cluster import (
    EngineProcess,
    cluster,
    leader_of,
    new_order,
    wait_for,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.skipif(os.geteuid() != 0, reason="iptables rules need root"),
]

__all__ = ["cluster"]  # the fixture, imported so pytest finds it here

CUT_OFF_S = 2.0  # 12 to 25 election timeouts of 80-160 ms
ORDERS_WHILE_CUT_OFF = 20


@pytest.fixture
def run_id(tmp_path: Path) -> Iterator[str]:
    with netfilter_run(tmp_path, f"prevote{os.getpid()}") as run:
        yield run


def _term_and_commit(node: EngineProcess) -> tuple[int, int]:
    status = node.status()
    assert status is not None, f"{node.node_id} stopped answering /status"
    return int(status["term"]), int(status["commit_index"])


def test_a_cut_off_follower_rejoins_without_an_election(
    cluster: dict[str, EngineProcess], run_id: str
) -> None:
    nodes = list(cluster.values())
    leader, term = wait_for("a first leader", lambda: leader_of(nodes), timeout_s=15)
    follower = next(node for node in nodes if node is not leader)
    others = [node for node in nodes if node is not follower]
    wait_for(
        "the follower to know the leader",
        lambda: (follower.status() or {}).get("leader") == leader.node_id or None,
        timeout_s=5,
    )

    host_of = {node.node_id: node.http_host for node in nodes}  # Raft binds the same host
    fault = inject_partition(
        run_id,
        1,
        [
            [(follower.node_id, host_of[follower.node_id])],
            [(o.node_id, host_of[o.node_id]) for o in others],
        ],
    )
    try:
        cut_at = time.monotonic()
        for number in range(ORDERS_WHILE_CUT_OFF):
            status, body = leader.post(new_order(f"cut-{number}", "buy", 9_000 + number, 1))
            assert status == 200 and body["outcome"] == "acked", body
        terms_seen = set()
        while time.monotonic() - cut_at < CUT_OFF_S:
            terms_seen.add(_term_and_commit(follower)[0])
            time.sleep(0.05)
        follower_commit = _term_and_commit(follower)[1]
        leader_term, leader_commit = _term_and_commit(leader)
    finally:
        fault.heal()

    # The partition took effect: the leader committed without the follower, which saw none.
    # One at a time, so each order is an entry of its own.
    assert leader_commit >= follower_commit + ORDERS_WHILE_CUT_OFF
    assert leader_term == term
    # Pre-vote: no election was stood, so the follower's term never rose.
    assert terms_seen == {term}, f"the cut-off follower's terms: {sorted(terms_seen)}"

    # Healed: it catches up with the same leader, in the same term, and nobody stood.
    wait_for(
        "the follower to catch up",
        lambda: _term_and_commit(follower)[1] >= leader_commit or None,
        timeout_s=10,
    )
    for node in nodes:
        status = node.status()
        assert status is not None
        assert (status["term"], status["leader"]) == (term, leader.node_id), status
    leader_status = leader.status()
    assert leader_status is not None and leader_status["role"] == "leader"
    assert float(leader_status["role_age_ms"]) > CUT_OFF_S * 1000
