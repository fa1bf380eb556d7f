"""Pre-vote (Raft thesis §9.6) and leader stickiness, as pure decisions for the node.

PySyncObj has neither. A node whose election timer fires stands at once at term + 1, and any
member that sees a RequestVote of a higher term adopts it, a leader included, which then steps
down. So a member that merely missed heartbeats deposes a healthy leader: a follower starved of
CPU on a saturated host, a follower cut off by a partition (its term climbs by one per timeout
and wins on the heal), or the restarted old leader of a failover. In the failover bench at
1,000 orders/s on two cores one failover went from term 20 to 36, and each of ten kills took
longer than the one before.

With pre-vote a node whose timer fires first asks the others whether they *would* vote for it
at term + 1, changing nothing. It stands only once a majority (itself included) says yes, and a
member says yes only if (a) it has not heard from a leader within the minimum election timeout
(it believes there is no leader: stickiness), (b) the proposed term is above its own, and
(c) the asker's log is at least as up to date as its own (the real vote's rule). So a node that
cannot win never raises anyone's term.

A refusal carries the voter's term. If it is not below the term asked for, the asker adopts it
(as a follower, voting for no one): otherwise an asker behind in term and ahead in log, and a
voter ahead in term and behind in log, would refuse each other for ever.

Pure logic, no PySyncObj and no clock: node.py reads the Raft state and sends the messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Message types PySyncObj does not know: node.py handles them before PySyncObj sees them. Every
# member must run pre-vote; one that does not never answers, and without its yes a two-node
# majority could not form.
PRE_VOTE_REQUEST = "hftchaos_pre_vote"
PRE_VOTE_REPLY = "hftchaos_pre_vote_reply"


@dataclass(frozen=True, slots=True)
class LogPosition:
    """The last entry of a log: Raft compares term first, then index."""

    term: int
    index: int

    def at_least_as_up_to_date_as(self, other: LogPosition) -> bool:
        return (self.term, self.index) >= (other.term, other.index)


@dataclass(frozen=True, slots=True)
class VoterView:
    """What a member knows when it is asked for a pre-vote."""

    term: int
    log: LogPosition
    is_leader: bool
    heard_from_leader_recently: bool  # a leader's AppendEntries within the minimum timeout


def would_vote(asked_term: int, asker_log: LogPosition, voter: VoterView) -> bool:
    """Would this member vote for the asker if it stood at `asked_term` now?"""
    if voter.is_leader or voter.heard_from_leader_recently:
        return False
    if asked_term <= voter.term:
        return False
    return asker_log.at_least_as_up_to_date_as(voter.log)


@dataclass(slots=True)
class PreVoteRound:
    """One node's round of asking: the term it would stand at and who has said yes.

    `number` tells this round's replies from late replies to an earlier one: a yes given
    before a leader was elected must not count once the asker has heard of that leader."""

    number: int
    asked_term: int
    members: int  # the whole cluster, this node included
    granted: set[str] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        # This node's own yes counts: a majority of the cluster, itself included.
        return 1 + len(self.granted) > self.members / 2

    def answer(self, voter: str, number: int, granted: bool) -> bool:
        """Count one reply; True once the round has a majority. A reply to another round
        counts for nothing."""
        if granted and number == self.number:
            self.granted.add(voter)
        return self.passed


# A restarted node still replaying its own journal waits before asking for pre-votes: once
# leader, it could answer no order before the replay was over. The failover bench's scenario
# (30 kills under 1,000/s, one every 4 s), two runs with and two without, alternated: first
# commits over 350 ms after the kill 7 and 2 of 30 against 7 and 7, the worst 1.5 / 1.2 s
# against 3.3 / 2.0 s, elections no kill caused 2 / 0 against 5 / 1; the price, the worst
# failover 599 / 712 ms against 578 / 379. Only its own journal's entries count: a first
# version waited on any backlog of 32 entries or more, and under that load a follower that had
# never restarted lagged that much too, so both live nodes waited (a 1.2 s failover).
# Bounded, for when every live member is replaying: one of them must lead.
REPLAY_WAIT_MAX_S = 1.0


def waits_for_replay(entries_left: int, waiting_for_s: float | None) -> bool:
    """Whether a node whose election timer fired gives the others one more timeout to stand,
    with `entries_left` entries of its own journal still to replay, having waited
    `waiting_for_s` already since it last heard from a leader (None: it has not waited)."""
    if entries_left <= 0:
        return False
    return waiting_for_s is None or waiting_for_s < REPLAY_WAIT_MAX_S


def term_to_adopt(current_term: int, asked_term: int, voter_term: int) -> int | None:
    """The term a refused asker must adopt (see the module docstring), or None to keep its own."""
    if voter_term >= asked_term and voter_term > current_term:
        return voter_term
    return None
