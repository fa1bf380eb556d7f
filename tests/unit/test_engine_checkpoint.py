"""The engine's checkpoint log (targets/reference/engine/checkpoint.py), on real files."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from targets.reference.engine.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointLog,
    checkpoint_bytes,
    read_checkpoint,
    remove_legacy,
)
from targets.reference.engine.commands import CancelOrder, NewOrder, encode
from targets.reference.engine.orderbook import Side
from targets.reference.engine.state import EngineState, replay


def orders(count: int, start: int = 0) -> list[str]:
    """Buys and sells around one price: many rest, and later ones fill them in part."""
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


def logged(
    directory: Path, texts: list[str], min_commands: int, state: EngineState | None = None
) -> tuple[EngineState, CheckpointLog]:
    """`texts` applied one per Raft entry (from index 2, term 1) to a state whose log is
    appended after every command as the node does after every tick; the log still open."""
    state = state if state is not None else EngineState()
    log = CheckpointLog(directory, min_commands, "n1")
    log.begin(state, read_checkpoint(directory) if state.command_count else None)
    for text in texts:
        index = state.last_index + 1 if state.command_count else 2
        state.apply(index, text)
        # A due record waits while two are still being written (the log's back-pressure).
        while log.due(state) and not log.maybe_append(state, index, 1):
            time.sleep(0.001)
    return state, log


def closed(log: CheckpointLog, records: int) -> None:
    log.close()
    deadline = time.monotonic() + 20
    while log.appended < records and time.monotonic() < deadline:
        time.sleep(0.005)
    assert log.appended == records
    time.sleep(0.05)  # the writer closes its file after the last record


def test_the_records_read_back_as_the_state_at_the_last_one(tmp_path: Path) -> None:
    texts = [*orders(250), cancel("o-3"), cancel("o-10"), *orders(48, start=250)]
    state, log = logged(tmp_path, texts, min_commands=100)
    closed(log, 3)  # at 100, 200 and 300 commands

    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.applied_index == 301  # the command at index 301 is the 300th
    assert checkpoint.applied_term == 1
    assert checkpoint.state.canonical_snapshot() == state.canonical_snapshot()
    assert checkpoint.state.state_hash() == state.state_hash()
    assert checkpoint.state.digests_are_consistent()
    assert checkpoint.state.applied_commands() == state.applied_commands()


def test_an_order_changed_after_its_first_record_is_read_as_it_is_now(tmp_path: Path) -> None:
    # o-0 (sell 1 at 10,000) rests in the first record and is filled in the second.
    buy = encode(NewOrder("taker", "acct-x", "ACME", Side.BUY, 10_000, 1, 9_000))
    state, log = logged(tmp_path, [orders(1)[0], buy], min_commands=1)
    closed(log, 2)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.state.order_record("o-0") == state.order_record("o-0")
    assert state.order_record("o-0")["status"] == "filled"  # type: ignore[index]
    assert checkpoint.state.canonical_snapshot() == state.canonical_snapshot()


def test_a_restored_state_goes_on_appending_to_the_same_log(tmp_path: Path) -> None:
    texts = orders(400)
    _, log = logged(tmp_path, texts[:200], min_commands=100)
    closed(log, 2)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    _, log = logged(tmp_path, texts[200:], min_commands=100, state=checkpoint.state)
    closed(log, 2)
    again = read_checkpoint(tmp_path)
    assert again is not None
    assert (
        again.state.canonical_snapshot()
        == replay((2 + n, text) for n, text in enumerate(texts)).canonical_snapshot()
    )


def test_a_torn_record_ends_what_is_read_and_is_cut_off_before_the_next(tmp_path: Path) -> None:
    texts = orders(300)
    _, log = logged(tmp_path, texts, min_commands=100)
    closed(log, 3)
    path = tmp_path / CHECKPOINT_FILE
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])  # killed in the middle of the third record
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.applied_index == 201
    assert (
        checkpoint.state.canonical_snapshot()
        == replay((2 + n, text) for n, text in enumerate(texts[:200])).canonical_snapshot()
    )
    # Appending after it first cuts the torn tail off, or no record after it would be read.
    _, log = logged(tmp_path, texts[200:], min_commands=100, state=checkpoint.state)
    closed(log, 1)
    again = read_checkpoint(tmp_path)
    assert again is not None and again.applied_index == 301


def record_starts(data: bytes) -> list[int]:
    """Where each record of a checkpoint file begins (after the magic line)."""
    offset, starts = data.index(b"\n") + 1, []
    while offset < len(data):
        starts.append(offset)
        length, _crc = struct.unpack_from("<II", data, offset)
        offset += 8 + length
    return starts


def test_a_damaged_record_ends_what_is_read_even_if_later_ones_are_whole(tmp_path: Path) -> None:
    _, log = logged(tmp_path, orders(300), min_commands=100)
    closed(log, 3)
    path = tmp_path / CHECKPOINT_FILE
    data = bytearray(path.read_bytes())
    starts = record_starts(bytes(data))
    assert len(starts) == 3
    data[starts[1] + 40] ^= 0xFF  # inside the second record's pickle
    path.write_bytes(bytes(data))
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.applied_index == 101
    assert checkpoint.valid_bytes == starts[1]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint log"], ids=["empty", "foreign"])
def test_an_unreadable_file_is_no_checkpoint(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(content)
    assert read_checkpoint(tmp_path) is None


def test_no_file_is_no_checkpoint(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path) is None


def test_a_log_of_no_records_is_no_checkpoint(tmp_path: Path) -> None:
    _, log = logged(tmp_path, orders(99), min_commands=100)  # none due yet
    closed(log, 0)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    assert read_checkpoint(tmp_path) is None


def test_checkpoints_switched_off_write_nothing(tmp_path: Path) -> None:
    state, log = logged(tmp_path, orders(50), min_commands=0)
    assert not log.due(state)
    assert not (tmp_path / CHECKPOINT_FILE).exists()


def test_a_whole_state_in_one_record_reads_back(tmp_path: Path) -> None:
    state = replay((2 + n, text) for n, text in enumerate(orders(3_000)))
    (tmp_path / CHECKPOINT_FILE).write_bytes(checkpoint_bytes(3_001, 4, state))
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint is not None
    assert (checkpoint.applied_index, checkpoint.applied_term) == (3_001, 4)
    assert checkpoint.state.canonical_snapshot() == state.canonical_snapshot()


def test_a_state_of_another_format_is_not_read_as_this_one() -> None:
    image = replay([(2, orders(1)[0])]).__getstate__()
    image["format"] = 999
    with pytest.raises(ValueError, match="state format 999"):
        EngineState().__setstate__(image)


def test_the_whole_state_files_of_earlier_versions_are_removed(tmp_path: Path) -> None:
    for name in ("state.checkpoint", "state.checkpoint.12345.tmp"):
        (tmp_path / name).write_bytes(b"old")
    kept = [tmp_path / "raft.journal", tmp_path / CHECKPOINT_FILE]
    for path in kept:
        path.write_bytes(b"kept")
    remove_legacy(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


def test_changes_cannot_be_taken_before_they_are_tracked() -> None:
    with pytest.raises(RuntimeError, match="track_changes"):
        EngineState().take_changes()


def test_a_state_replaced_under_the_log_stops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, log = logged(tmp_path, orders(10), min_commands=5)
    replaced = replay((2 + n, text) for n, text in enumerate(orders(20)))
    assert not log.due(replaced)  # its changes were never tracked: no record would follow on
    assert "CHECKPOINT n1 not written: the state was replaced" in capsys.readouterr().err
    assert not log.due(state)
