"""Every leadership loss of every Raft cluster, from the probe's samples alone. Pure.

Definitions (also in scenarios/README.md, "Leadership"):
- A cluster's leader is the member that last reported itself leader in the newest term seen.
- Its leadership is lost at the first sign of it: the leader's own answer says another role
  or another term, or it stops answering (confirmed only when no answer of it as leader in
  that term follows), or any member reports a newer term (a follower started an election), or
  a fault aimed at the leader was applied, whichever came first.
- The loss ends when any member, the same one included, reports leadership in a newer term;
  that instant is placed as for failover_ms (metrics.estimate_election).
- leaderless_ms is the time between the two. A re-election of the same node counts.

Status answers that fail while the leader goes on leading in the same term (a slow or lossy
status path) are no loss: a loss needs a newer term to end it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.metrics import NS_PER_MS, ElectionEstimate, estimate_election
from harness.records import FaultEvent, ProbeSample

# What showed a loss first.
Sign = Literal["role", "unreachable", "newer-term", "fault"]


@dataclass(frozen=True)
class LeadershipLoss:
    cluster: str
    old_leader: str
    old_term: int
    lost_ns: int
    sign: Sign
    new_leader: str | None = None
    new_term: int | None = None
    elected_ns: int | None = None
    election: ElectionEstimate | None = None
    fault_index: int | None = None  # the fault aimed at the old leader, when one was
    # When the old leader's last answer as leader arrived: the loss happened after it, so a
    # loss placed at its first sign may be late by up to lost_ns - last_led_ns (one poll).
    last_led_ns: int | None = None

    @property
    def loss_bracket_ns(self) -> int:
        """How much earlier than `lost_ns` the loss may have been. Nothing when a fault placed
        it: the fault's own start (or the last answer as leader after it) bounds it exactly."""
        if self.sign == "fault" or self.last_led_ns is None:
            return 0
        return max(0, self.lost_ns - self.last_led_ns)

    @property
    def error_bound_ns(self) -> int | None:
        """How far leaderless_ms can be off: the loss's bracket plus the election's bound."""
        if self.election is None:
            return None
        return self.loss_bracket_ns + self.election.error_bound_ns

    @property
    def leaderless_ms(self) -> float | None:
        if self.elected_ns is None:
            return None
        return max(0.0, (self.elected_ns - self.lost_ns) / NS_PER_MS)

    @property
    def same_node(self) -> bool:
        return self.new_leader == self.old_leader


@dataclass
class _Reign:
    node: str
    term: int
    # The first confirmed sign of loss, and the first unanswered poll of the leader since it
    # last answered as leader: a loss only if a newer term follows (else a slow status path).
    loss: tuple[int, Sign] | None = None
    unanswered_ns: int | None = None

    def observe(self, sample: ProbeSample) -> None:
        if sample.node == self.node and not sample.reachable:
            if self.unanswered_ns is None:
                self.unanswered_ns = sample.observed_ns
            return
        if self.leads(sample):
            self.unanswered_ns = None
            return
        sign = self._sign(sample)
        if sign is not None and self.loss is None:
            self.loss = self._earliest(sample.observed_ns, sign)

    def leads(self, sample: ProbeSample) -> bool:
        return sample.node == self.node and sample.role == "leader" and sample.term == self.term

    def _sign(self, sample: ProbeSample) -> Sign | None:
        if sample.term is not None and sample.term > self.term:
            return "newer-term"
        if sample.node == self.node:
            return "role"
        return None

    def _earliest(self, at_ns: int, sign: Sign) -> tuple[int, Sign]:
        if self.unanswered_ns is not None and self.unanswered_ns < at_ns:
            return self.unanswered_ns, "unreachable"
        return at_ns, sign

    def lost_by(self, elected: ProbeSample) -> tuple[int, Sign]:
        return self.loss or self._earliest(elected.observed_ns, "newer-term")


def leadership_losses(
    cluster: str, samples: Sequence[ProbeSample], faults: Sequence[FaultEvent] = ()
) -> list[LeadershipLoss]:
    """Every loss in one cluster's samples (sorted by arrival), ended or not."""
    ordered = sorted((s for s in samples if s.cluster == cluster), key=lambda s: s.arrival_ns)
    applied = [f for f in faults if f.phase == "applied"]
    losses: list[LeadershipLoss] = []
    reign: _Reign | None = None
    last_led_ns = 0
    for sample in ordered:
        new_reign = sample.reachable and sample.role == "leader" and sample.term is not None
        if reign is None:
            if new_reign:
                assert sample.term is not None
                reign, last_led_ns = _Reign(sample.node, sample.term), sample.arrival_ns
            continue
        if new_reign and sample.term is not None and sample.term > reign.term:
            losses.append(_ended(cluster, reign, sample, ordered, applied, last_led_ns))
            reign, last_led_ns = _Reign(sample.node, sample.term), sample.arrival_ns
            continue
        reign.observe(sample)
        if reign.leads(sample) and reign.loss is None:
            last_led_ns = sample.arrival_ns
    if reign is not None and reign.loss is not None:  # lost, and no leader since
        lost_ns, sign = reign.loss
        losses.append(
            LeadershipLoss(cluster, reign.node, reign.term, lost_ns, sign, last_led_ns=last_led_ns)
        )
    return losses


def _ended(
    cluster: str,
    reign: _Reign,
    elected: ProbeSample,
    samples: Sequence[ProbeSample],
    applied: Sequence[FaultEvent],
    last_led_ns: int,
) -> LeadershipLoss:
    lost_ns, sign = reign.lost_by(elected)
    # A fault aimed at the leader and in force only after it was last seen leading started
    # the loss: no earlier than it began, nor than that last answer (a leader may answer
    # while the fault is still being applied).
    aimed = [
        f
        for f in applied
        if reign.node in f.targets
        and last_led_ns <= f.in_force_ns
        and f.at_ns <= elected.arrival_ns
    ]
    fault = aimed[0] if aimed else None
    if fault is not None and max(fault.at_ns, last_led_ns) < lost_ns:
        lost_ns, sign = max(fault.at_ns, last_led_ns), "fault"
    estimate = estimate_election(elected, samples, lost_ns)
    return LeadershipLoss(
        cluster,
        reign.node,
        reign.term,
        lost_ns,
        sign,
        new_leader=elected.node,
        new_term=elected.term,
        elected_ns=max(estimate.chosen_ns, lost_ns),
        election=estimate,
        fault_index=fault.fault_index if fault is not None else None,
        last_led_ns=last_led_ns,
    )


def all_losses(
    samples: Sequence[ProbeSample], faults: Sequence[FaultEvent] = ()
) -> list[LeadershipLoss]:
    clusters = sorted({s.cluster for s in samples})
    losses = [loss for c in clusters for loss in leadership_losses(c, samples, faults)]
    return sorted(losses, key=lambda loss: loss.lost_ns)
