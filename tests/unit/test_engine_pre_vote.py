"""The reference engine's pre-vote decisions (targets/reference/engine/pre_vote.py), pure."""

from __future__ import annotations

import pytest

from targets.reference.engine.pre_vote import (
    REPLAY_WAIT_MAX_S,
    LogPosition,
    PreVoteRound,
    VoterView,
    term_to_adopt,
    waits_for_replay,
    would_vote,
)

LOG = LogPosition(term=3, index=40)


def voter(
    term: int = 3,
    log: LogPosition = LOG,
    is_leader: bool = False,
    heard_from_leader_recently: bool = False,
) -> VoterView:
    return VoterView(term, log, is_leader, heard_from_leader_recently)


def test_a_member_without_a_leader_votes_for_an_asker_as_up_to_date_as_itself() -> None:
    assert would_vote(4, LOG, voter())
    assert would_vote(4, LogPosition(3, 41), voter())
    assert would_vote(4, LogPosition(4, 1), voter())  # a later term beats a longer log


def test_a_member_that_hears_a_leader_refuses_so_a_cut_off_node_deposes_nobody() -> None:
    assert not would_vote(4, LOG, voter(heard_from_leader_recently=True))
    assert not would_vote(4, LOG, voter(is_leader=True))


def test_an_asker_behind_in_log_or_not_ahead_in_term_is_refused() -> None:
    assert not would_vote(4, LogPosition(3, 39), voter())
    assert not would_vote(4, LogPosition(2, 99), voter())
    assert not would_vote(3, LOG, voter(term=3))
    assert not would_vote(3, LOG, voter(term=5))


@pytest.mark.parametrize(("members", "yes_needed"), [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2)])
def test_a_round_passes_with_a_majority_counting_the_asker(members: int, yes_needed: int) -> None:
    asking = PreVoteRound(number=7, asked_term=4, members=members)
    for index in range(yes_needed):
        assert not asking.passed
        asking.answer(f"peer-{index}", 7, granted=True)
    assert asking.passed


def test_a_round_counts_each_voter_once_and_ignores_refusals_and_other_rounds() -> None:
    asking = PreVoteRound(number=7, asked_term=4, members=5)
    assert not asking.answer("n2", 7, granted=True)
    assert not asking.answer("n2", 7, granted=True)  # the same yes twice is one yes
    assert not asking.answer("n3", 7, granted=False)
    assert not asking.answer("n4", 6, granted=True)  # a late yes to the round before
    assert asking.answer("n5", 7, granted=True)


def test_a_refused_asker_adopts_a_voter_term_that_is_not_below_the_one_asked() -> None:
    assert term_to_adopt(current_term=3, asked_term=4, voter_term=4) == 4
    assert term_to_adopt(current_term=3, asked_term=4, voter_term=9) == 9
    assert term_to_adopt(current_term=3, asked_term=4, voter_term=3) is None
    assert term_to_adopt(current_term=5, asked_term=4, voter_term=4) is None


def test_a_node_replaying_its_journal_gives_the_others_time_to_stand_but_not_for_ever() -> None:
    assert not waits_for_replay(0, None)  # replayed (or never restarted)
    assert waits_for_replay(1, None)
    assert waits_for_replay(5_000, REPLAY_WAIT_MAX_S - 0.01)
    # If nobody else stood meanwhile (every live member replaying), it stands anyway.
    assert not waits_for_replay(5_000, REPLAY_WAIT_MAX_S)
