"""State checkpoints: written by a forked child, read back whole or not at all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from targets.reference.engine.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    CheckpointWriter,
    checkpoint_bytes,
    is_due,
    read_checkpoint,
    remove_unfinished,
)
from targets.reference.engine.commands import CancelOrder, NewOrder, encode
from targets.reference.engine.orderbook import Side
from targets.reference.engine.state import EngineState, replay


def orders(count: int, start: int = 0) -> list[str]:
    return [
        encode(
            NewOrder(
                f"o-{n}", f"acct-{n % 7}", "ACME", Side.BUY if n % 2 else Side.SELL,
                10_000 + n % 13, 1 + n % 5, 1_000 + n,
            )
        )
        for n in range(start, start + count)
    ]  # fmt: skip


def cancel(client_order_id: str) -> str:
    return encode(CancelOrder(client_order_id, 5_000))


def applied(texts: list[str], first_index: int = 2) -> EngineState:
    return replay((first_index + i, text) for i, text in enumerate(texts))


def wait_written(writer: CheckpointWriter, count: int) -> None:
    deadline = time.monotonic() + 20
    while writer.written < count and time.monotonic() < deadline:
        writer.maybe_write(EngineState(), 0, 0)  # reaps the child; an empty state is not due
        time.sleep(0.01)
    assert writer.written == count


def test_a_written_checkpoint_reads_back_as_the_same_state(tmp_path: Path) -> None:
    texts = orders(300)
    state = applied(texts)
    writer = CheckpointWriter(tmp_path, min_commands=100)
    assert writer.maybe_write(state, applied_index=301, applied_term=4)
    wait_written(writer, 1)

    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert (checkpoint.applied_index, checkpoint.applied_term) == (301, 4)
    assert checkpoint.state.state_hash() == state.state_hash()
    assert checkpoint.state.digests_are_consistent()
    assert checkpoint.state.canonical_snapshot() == state.canonical_snapshot()
    # Going on from the checkpoint (trades against the rebuilt books, cancels of orders resting
    # in them) gives what a replay from the start gives.
    more = orders(50, start=300) + [cancel(f"o-{n}") for n in range(0, 300, 7)]
    for offset, text in enumerate(more):
        checkpoint.state.apply(302 + offset, text)
    whole = applied(texts + more)
    assert checkpoint.state.canonical_snapshot() == whole.canonical_snapshot()
    assert checkpoint.state.state_hash() == whole.state_hash()
    assert checkpoint.state.digests_are_consistent()
    assert not list(tmp_path.glob("*.tmp"))


def test_the_child_writes_the_state_as_it_was_at_the_fork(tmp_path: Path) -> None:
    state = applied(orders(200))
    writer = CheckpointWriter(tmp_path, min_commands=100)
    assert writer.maybe_write(state, 201, 1)
    state.apply(202, orders(1, start=200)[0])  # the parent goes on at once
    wait_written(writer, 1)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.applied_index == 201
    assert checkpoint.state.command_count == 200


def test_checkpoints_are_due_by_count_and_by_share_of_the_state() -> None:
    assert not is_due(4_999, 0, min_commands=5_000)
    assert is_due(5_000, 0, min_commands=5_000)
    # With 100,000 commands in the last checkpoint, the next waits for half as many more.
    assert not is_due(149_999, 100_000, min_commands=5_000)
    assert is_due(150_000, 100_000, min_commands=5_000)
    assert not is_due(10**9, 0, min_commands=0)  # switched off


WHOLE = checkpoint_bytes(Checkpoint(40, 2, applied(orders(5_000))))


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint", WHOLE[: len(WHOLE) // 2], WHOLE[:-1]],
    ids=["empty", "foreign", "torn in the middle", "torn at the end"],
)
def test_an_unreadable_checkpoint_is_ignored(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(content)
    assert read_checkpoint(tmp_path) is None


def test_a_whole_checkpoint_of_many_pieces_reads_back(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(WHOLE)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.state.canonical_snapshot() == applied(orders(5_000)).canonical_snapshot()


def test_a_state_of_another_format_is_not_read_as_this_one(tmp_path: Path) -> None:
    image = applied(orders(3)).__getstate__()
    image["format"] = 999
    with pytest.raises(ValueError, match="state format 999"):
        EngineState().__setstate__(image)


def test_no_checkpoint_is_none(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path) is None


def test_the_temporary_files_of_killed_writers_are_removed(tmp_path: Path) -> None:
    leftover = tmp_path / f"{CHECKPOINT_FILE}.12345.tmp"
    leftover.write_bytes(b"half")
    kept = tmp_path / "raft.journal"
    kept.write_bytes(b"journal")
    remove_unfinished(tmp_path)
    assert not leftover.exists()
    assert kept.exists()


def test_the_members_of_a_cluster_write_their_first_checkpoints_at_different_counts(
    tmp_path: Path,
) -> None:
    state = applied(orders(50))
    due = [
        CheckpointWriter(tmp_path / f"n{rank}", min_commands=100, rank=rank, members=3)
        for rank in range(3)
    ]
    for writer in due:
        (tmp_path / f"n{due.index(writer)}").mkdir()
    # First checkpoints at 100, 67 and 34 commands: 50 is past the third member's only.
    assert [writer.maybe_write(state, 51, 1) for writer in due] == [False, False, True]
    wait_written(due[2], 1)
