"""Packet loss on the Raft leader makes that same node lose leadership and win it back in a
newer term, on real reference engine nodes through a whole scenario run; summary.json must
count it as a leadership loss of that node, re-elected, with its leaderless_ms.

Only the leader can win the next election here: n1 keeps Raft timings close to the engine's
defaults (election timeout 150-300 ms, stepping down after 1 s without a majority), n2 and n3 wait
12-15 s for a leader before they stand. n1 leads first (nobody else stands that soon); losing
every packet to and from it for 2.5 s makes it step down after 1 s, and once the rules are
gone it stands again (in a newer term) long before either follower's timeout, which started
at its last heartbeat. Run with `--noop-fault packet_loss` to see the test fail when the loss
does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.metrics import NS_PER_MS
from harness.runner import run_scenario
from harness.store.summary import LeadershipLossSummary, RunSummary, load_summary
from tests.integration.small_topology import small_topology

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="packet loss needs root (iptables)"),
]

LEADER = "n1"
LEADER_FLAGS = (
    "--election-timeout-min-ms=150",
    "--election-timeout-max-ms=300",
    "--leader-fallback-timeout-ms=1000",
)
# Far longer than the loss window plus n1's reconnection and election: only n1 stands. Their
# leader stickiness (by default their minimum election timeout, 12 s) is brought back to the
# usual 150 ms, or they would refuse n1's pre-votes for 12 s after its last heartbeat.
FOLLOWER_FLAGS = (
    "--election-timeout-min-ms=12000",
    "--election-timeout-max-ms=15000",
    "--leader-stickiness-ms=150",
)
LOSS_S = 2.5  # over n1's 1 s leader fallback: it steps down while cut off
SCENARIO = """\
name: same-node-reelection
topology: {topology}
load: {{rate_per_s: 50, duration_s: 9, warmup_s: 1}}
steady_state: {{window_s: 1}}
checks: []
faults:
  - {{type: packet_loss, at_s: 3, duration_s: {loss_s}, percent: 100,
     target: {{role: engine, select: leader}}}}
"""


def _run(tmp_path: Path) -> RunSummary:
    topology = small_topology(
        tmp_path, engine_flags={LEADER: LEADER_FLAGS, "n2": FOLLOWER_FLAGS, "n3": FOLLOWER_FLAGS}
    )
    scenario = tmp_path / "same-node-reelection.yaml"
    scenario.write_text(SCENARIO.format(topology=topology, loss_s=LOSS_S))
    result = run_scenario(scenario, None, lambda _message: None)
    return load_summary(result.run_dir)


def test_packet_loss_re_election_of_the_leader_is_counted(tmp_path: Path) -> None:
    summary = _run(tmp_path)
    assert summary.errors == [], summary.errors
    (fault,) = summary.faults
    assert fault.type == "packet_loss" and fault.targets == [LEADER], fault
    assert fault.leader_before == LEADER, fault
    assert fault.healed_ns is not None

    print([loss.model_dump() for loss in summary.leadership_losses])
    assert summary.leadership_losses, "no leadership loss was counted"
    loss: LeadershipLossSummary = summary.leadership_losses[0]
    assert len(summary.leadership_losses) == 1, summary.leadership_losses
    assert loss.old_leader == LEADER and loss.new_leader == LEADER and loss.same_node, loss
    assert loss.new_term is not None and loss.new_term > loss.old_term, loss
    assert loss.old_term == fault.term_before, (loss, fault)
    assert loss.leaderless_ms is not None and loss.leaderless_ms > 0, loss
    # The loss is the fault's: it began while the rules were in place (at the fault, or at
    # n1's last answer as leader while the rules were still going in), and n1 could win no
    # vote before they were gone.
    assert loss.sign == "fault" and loss.fault == 0, loss
    assert fault.applied_ns <= loss.lost_ns < fault.healed_ns, (loss, fault)
    assert loss.elected_ns is not None and loss.elected_ns > fault.healed_ns, (loss, fault)
    assert summary.metric("leaderless_ms") == pytest.approx(loss.leaderless_ms, abs=0.1)
    # Checked last so that, with the loss made a no-op, the re-election asserts fail first.
    assert fault.effect is not None and fault.effect.status == "effective", fault.effect
    dropped = fault.effect.evidence.get("packets_dropped")
    assert isinstance(dropped, int) and dropped > 0, fault.effect.evidence
    print(
        f"{LEADER} re-elected: term {loss.old_term} -> {loss.new_term}, "
        f"leaderless {loss.leaderless_ms} ms (sign {loss.sign}, fault {loss.fault}), "
        f"{dropped} packets dropped, loss healed "
        f"{(loss.elected_ns - fault.healed_ns) / NS_PER_MS:.1f} ms before the re-election"
    )
