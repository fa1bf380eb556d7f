"""Group commit's pure parts: queueing, cutting into bounded batches, handing out results."""

from __future__ import annotations

import threading

import pytest

from targets.reference.engine.batching import (
    MAX_BATCH_BYTES,
    MAX_BATCH_COMMANDS,
    CommandBatcher,
    Pending,
    cut_batches,
    hand_out,
)

SUCCESS = 0  # PySyncObj's FAIL_REASON.SUCCESS


class Answers:
    def __init__(self) -> None:
        self.got: list[tuple[object, object]] = []

    def __call__(self, result: object, error: object) -> None:
        self.got.append((result, error))


def pending(text: str, answers: Answers | None = None) -> Pending:
    return Pending(text, len(text.encode()), answers or Answers())


def texts(batches: list[list[Pending]]) -> list[list[str]]:
    return [[item.text for item in batch] for batch in batches]


def test_batches_keep_arrival_order_within_the_count_bound() -> None:
    items = [pending(str(n)) for n in range(7)]
    assert texts(cut_batches(items, max_commands=3, max_bytes=1000)) == [
        ["0", "1", "2"],
        ["3", "4", "5"],
        ["6"],
    ]
    assert cut_batches([], max_commands=3, max_bytes=1000) == []


def test_batches_stay_within_the_byte_bound_and_a_large_command_goes_alone() -> None:
    items = [pending("a" * 40), pending("b" * 40), pending("c" * 30), pending("d" * 500)]
    items.append(pending("e"))
    assert [[len(text) for text in batch] for batch in texts(cut_batches(items, 100, 100))] == [
        [40, 40],
        [30],
        [500],
        [1],
    ]


def test_the_byte_bound_counts_utf8_bytes() -> None:
    # Two-byte characters: 30 of them are 60 bytes, two such commands exceed 100 bytes.
    items = [pending("é" * 30), pending("é" * 30)]
    assert len(cut_batches(items, 100, 100)) == 2


def test_a_batch_of_the_default_bounds_fits_one_pysyncobj_message() -> None:
    # Below PySyncObj's appendEntriesBatchSizeBytes (64 KiB), an entry avoids the slow
    # chunked transmission; the pickle adds a few bytes per command.
    assert MAX_BATCH_BYTES + MAX_BATCH_COMMANDS * 16 < 2**16


def test_add_says_when_the_tick_thread_must_be_woken() -> None:
    batcher = CommandBatcher(max_commands=2, max_bytes=1000)
    assert batcher.add("x", Answers()) is True
    assert batcher.add("y", Answers()) is False
    assert batcher.add("z", Answers()) is False
    assert len(batcher) == 3
    assert texts(batcher.take_batches()) == [["x", "y"], ["z"]]
    assert len(batcher) == 0
    assert batcher.take_batches() == []
    assert batcher.add("w", Answers()) is True


def test_bounds_must_admit_a_command() -> None:
    with pytest.raises(ValueError):
        CommandBatcher(max_commands=0)
    with pytest.raises(ValueError):
        CommandBatcher(max_bytes=0)


def test_concurrent_proposers_lose_nothing_and_keep_their_own_order() -> None:
    batcher = CommandBatcher(max_commands=16, max_bytes=10_000)
    taken: list[Pending] = []
    stop = threading.Event()

    def tick_thread() -> None:
        while not stop.is_set() or len(batcher):
            for batch in batcher.take_batches():
                assert len(batch) <= 16
                taken.extend(batch)

    def proposer(name: str) -> None:
        for n in range(500):
            batcher.add(f"{name}-{n}", Answers())

    ticker = threading.Thread(target=tick_thread)
    ticker.start()
    proposers = [threading.Thread(target=proposer, args=(f"p{k}",)) for k in range(4)]
    for thread in proposers:
        thread.start()
    for thread in proposers:
        thread.join()
    stop.set()
    ticker.join()
    assert len(taken) == 2000
    for k in range(4):
        mine = [item.text for item in taken if item.text.startswith(f"p{k}-")]
        assert mine == [f"p{k}-{n}" for n in range(500)]


def test_each_command_of_an_applied_entry_gets_its_own_result() -> None:
    answers = [Answers() for _ in range(3)]
    batch = [pending(f"c{n}", answers[n]) for n in range(3)]
    hand_out(batch, [{"n": 0}, {"n": 1}, {"n": 2}], SUCCESS, SUCCESS)
    assert [a.got for a in answers] == [[({"n": n}, SUCCESS)] for n in range(3)]


def test_a_failed_entry_fails_every_command_in_it() -> None:
    answers = [Answers() for _ in range(2)]
    batch = [pending(f"c{n}", answers[n]) for n in range(2)]
    discarded = 3
    hand_out(batch, None, discarded, SUCCESS)
    assert [a.got for a in answers] == [[(None, discarded)], [(None, discarded)]]


@pytest.mark.parametrize("results", [[{"n": 0}], None, {"n": 0}], ids=["short", "none", "dict"])
def test_results_that_do_not_match_the_batch_are_nobody_s_result(results: object) -> None:
    answers = [Answers() for _ in range(2)]
    batch = [pending(f"c{n}", answers[n]) for n in range(2)]
    hand_out(batch, results, SUCCESS, SUCCESS)
    for answer in answers:
        [(result, error)] = answer.got
        assert result is None
        assert error != SUCCESS
