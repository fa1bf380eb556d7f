from __future__ import annotations

import random
from pathlib import Path

import pytest
from pysyncobj.journal import FileJournal

from targets.reference.engine.commands import (
    CancelOrder,
    CommandError,
    MarkPublished,
    NewOrder,
    canonical_json,
    encode,
    parse_client_request,
)
from targets.reference.engine.journal import JournalError, read_commands, read_entries
from targets.reference.engine.orderbook import Side
from targets.reference.engine.state import AppliedCommand, EngineState, replay


def new(
    client_order_id: str,
    side: str,
    price: int,
    quantity: int,
    ts_ns: int = 1_000,
    account: str = "acct-1",
    symbol: str = "ACME",
) -> str:
    return encode(NewOrder(client_order_id, account, symbol, Side(side), price, quantity, ts_ns))


def cancel(client_order_id: str, ts_ns: int = 2_000) -> str:
    return encode(CancelOrder(client_order_id, ts_ns))


def apply_all(state: EngineState, commands: list[str], first_index: int = 1) -> list[object]:
    return [state.apply(first_index + i, text) for i, text in enumerate(commands)]


def random_log(seed: int, count: int) -> list[tuple[int, str]]:
    """A reproducible mixed log: new orders around a mid price, cancels, publish marks, with
    gaps in the Raft indexes where no-op entries would be."""
    rng = random.Random(seed)
    log: list[tuple[int, str]] = []
    index = 1
    for i in range(count):
        index += rng.choice([1, 1, 1, 2])
        roll = rng.random()
        if roll < 0.75:
            text = new(
                f"c-{i}",
                rng.choice(["buy", "sell"]),
                10_000 + rng.randint(-5, 5),
                rng.randint(1, 20),
                ts_ns=1_700_000_000_000_000_000 + i,
                account=f"acct-{rng.randint(1, 4)}",
                symbol=rng.choice(["ACME", "BOLT"]),
            )
        elif roll < 0.95:
            text = cancel(f"c-{rng.randint(0, max(i - 1, 0))}", ts_ns=i)
        else:
            text = encode(MarkPublished(rng.randint(0, i)))
        log.append((index, text))
    return log


def test_same_log_into_fresh_states_gives_same_hash_and_executions() -> None:
    log = random_log(seed=7, count=600)
    first, second = replay(log), replay(log)
    assert first.last_exec_seq > 50  # the log really trades
    assert first.state_hash() == second.state_hash()
    assert first.execution_records(1, 10_000) == second.execution_records(1, 10_000)
    assert canonical_json(first.canonical_snapshot()) == canonical_json(second.canonical_snapshot())
    assert first.digests_are_consistent()


def test_results_are_the_same_on_every_replica() -> None:
    log = random_log(seed=11, count=300)
    replica_a, replica_b = EngineState(), EngineState()
    for index, text in log:
        assert replica_a.apply(index, text) == replica_b.apply(index, text)


def test_execution_seq_is_gap_free_from_one() -> None:
    state = replay(random_log(seed=3, count=800))
    seqs = [record["seq"] for record in state.execution_records(1, 100_000)]
    assert seqs == list(range(1, state.last_exec_seq + 1))


def test_execution_carries_the_aggressor_command_timestamp() -> None:
    state = EngineState()
    apply_all(state, [new("s1", "sell", 100, 5, ts_ns=111), new("b1", "buy", 100, 5, ts_ns=222)])
    [execution] = state.execution_records(1, 10)
    assert execution == {
        "seq": 1,
        "symbol": "ACME",
        "price": 100,
        "quantity": 5,
        "buy_order_id": "b1",
        "sell_order_id": "s1",
        "buy_account": "acct-1",
        "sell_account": "acct-1",
        "aggressor": "buy",
        "ts_ns": 222,
    }


def test_duplicate_new_changes_nothing_and_returns_the_original_result() -> None:
    state = EngineState()
    apply_all(state, [new("s1", "sell", 100, 3), new("s2", "sell", 100, 3)])
    original = state.apply(3, new("b1", "buy", 100, 4))  # fills 3 from s1 and 1 from s2
    state.apply(4, new("b2", "buy", 100, 2))
    before = (state.canonical_snapshot()["orders"], state.execution_records(1, 100))

    duplicate = state.apply(5, new("b1", "sell", 999, 1))  # same id, different fields

    assert duplicate == {**original, "duplicate": True}
    assert (state.canonical_snapshot()["orders"], state.execution_records(1, 100)) == before


def test_duplicate_answer_is_the_acceptance_even_after_later_fills() -> None:
    state = EngineState()
    first = state.apply(1, new("b1", "buy", 100, 10))
    state.apply(2, new("s1", "sell", 100, 4))
    again = state.apply(3, new("b1", "buy", 100, 10))
    assert again["order"] == first["order"]
    assert again["executions"] == []
    current = state.order_record("b1")
    assert current is not None
    assert (current["filled"], current["status"]) == (4, "partially_filled")


def test_cancel_results_say_why_nothing_was_cancelled() -> None:
    state = EngineState()
    apply_all(
        state, [new("s1", "sell", 100, 5), new("b1", "buy", 100, 5), new("s2", "sell", 101, 1)]
    )
    assert state.apply(4, cancel("nope"))["reason"] == "unknown_order"
    assert state.apply(5, cancel("s1"))["reason"] == "already_filled"
    done = state.apply(6, cancel("s2"))
    assert done["cancelled"] is True
    assert state.apply(7, cancel("s2"))["reason"] == "already_cancelled"
    cancelled = state.order_record("s2")
    assert cancelled is not None
    assert cancelled["status"] == "cancelled"


def test_hash_changes_with_state_and_is_stable_without() -> None:
    state = EngineState()
    empty = state.state_hash()
    state.apply(1, new("b1", "buy", 100, 5))
    one_order = state.state_hash()
    assert one_order != empty
    assert state.state_hash() == one_order  # reading does not change it
    state.apply(2, new("s1", "sell", 100, 2))
    assert state.state_hash() != one_order
    assert state.digests_are_consistent()


def test_hash_depends_on_timestamps_and_on_raft_indexes() -> None:
    base = replay([(1, new("b1", "buy", 100, 5, ts_ns=1))]).state_hash()
    assert replay([(1, new("b1", "buy", 100, 5, ts_ns=2))]).state_hash() != base
    assert replay([(2, new("b1", "buy", 100, 5, ts_ns=1))]).state_hash() != base


def test_published_seq_never_goes_back_nor_past_the_executions() -> None:
    state = EngineState()
    apply_all(
        state, [new("s1", "sell", 100, 5), new("b1", "buy", 100, 1), new("b2", "buy", 100, 1)]
    )
    assert state.last_exec_seq == 2
    state.apply(4, encode(MarkPublished(1)))
    state.apply(5, encode(MarkPublished(0)))
    assert state.published_seq == 1
    state.apply(6, encode(MarkPublished(50)))
    assert state.published_seq == 2


def test_malformed_command_is_recorded_and_answered_not_raised() -> None:
    state = EngineState()
    result = state.apply(1, '{"type":"new","client_order_id":"x"}')
    assert "malformed" in str(result["error"])
    assert state.applied_commands()[0].raft_index == 1
    assert state.order_record("x") is None


def test_log_indexes_must_increase() -> None:
    state = EngineState()
    state.apply(5, new("b1", "buy", 100, 1))
    with pytest.raises(ValueError, match="index 5 position 0 applied after index 5 position 0"):
        state.apply(5, new("b2", "buy", 100, 1))
    state.apply(5, new("b2", "buy", 100, 1), position=1)  # the next command of entry 5
    with pytest.raises(ValueError, match="index 4 position 3 applied after index 5 position 1"):
        state.apply(4, new("b3", "buy", 100, 1), position=3)
    state.apply(6, new("b3", "buy", 100, 1))


def test_commands_of_one_entry_are_told_apart_by_position() -> None:
    """Group commit: the same commands as one entry or as one entry each give the same books
    and executions, but not the same commands digest (which entries were applied differ)."""
    log = [text for _, text in random_log(seed=11, count=50)]
    one_each = replay([(index, text) for index, text in enumerate(log, start=1)])
    batched = replay([AppliedCommand(7, text, position) for position, text in enumerate(log)])
    assert batched.execution_records(1, 1000) == one_each.execution_records(1, 1000)
    assert batched.canonical_snapshot()["books"] == one_each.canonical_snapshot()["books"]
    assert batched.state_hash() != one_each.state_hash()
    assert batched.digests_are_consistent()
    assert replay(batched.applied_commands()).state_hash() == batched.state_hash()
    # The same texts at other positions of the entry are another log.
    moved = replay([AppliedCommand(7, text, position + 1) for position, text in enumerate(log)])
    assert moved.state_hash() != batched.state_hash()


def test_an_unbatched_log_keeps_its_hash_from_before_group_commit() -> None:
    """The link of a command at position 0 is `index:text` as it always was, so the state hash
    recorded by a run before group commit still replays (`hftchaos replay` on old runs)."""
    import hashlib

    text = new("b1", "buy", 100, 5, ts_ns=1)
    chain = hashlib.sha256(bytes(32) + f"3:{text}".encode()).hexdigest()
    summary = replay([(3, text)])._summary()
    assert summary["commands_digest"] == chain


def test_applied_commands_rebuild_the_same_state() -> None:
    original = replay(random_log(seed=5, count=200))
    rebuilt = replay(original.applied_commands())
    assert rebuilt.state_hash() == original.state_hash()


def test_client_request_validation() -> None:
    command = parse_client_request(
        {
            "type": "new",
            "client_order_id": "c",
            "account": "a",
            "symbol": "S",
            "side": "buy",
            "price": 10125,
            "quantity": 3,
            "ts_ns": 99,
        }
    )
    assert isinstance(command, NewOrder)
    assert command.ts_ns == 0  # the leader stamps the time, never the client
    for bad in [
        {"type": "mark_published", "seq": 1},
        {
            "type": "new",
            "client_order_id": "c",
            "account": "a",
            "symbol": "S",
            "side": "hold",
            "price": 1,
            "quantity": 1,
        },
        {
            "type": "new",
            "client_order_id": "c",
            "account": "a",
            "symbol": "S",
            "side": "buy",
            "price": 101.25,
            "quantity": 1,
        },
        {
            "type": "new",
            "client_order_id": "c",
            "account": "a",
            "symbol": "S",
            "side": "buy",
            "price": 1,
            "quantity": 0,
        },
        {
            "type": "new",
            "client_order_id": "c",
            "account": "a",
            "symbol": "S",
            "side": "buy",
            "price": 1,
            "quantity": True,
        },
        {"type": "cancel"},
        [],
    ]:
        with pytest.raises(CommandError):
            parse_client_request(bad)


def test_command_log_read_back_from_a_pysyncobj_journal(tmp_path: Path) -> None:
    """What a node's proposals looked like in PySyncObj's FileJournal before group commit: a
    type byte and a pickled (method id, (command text,)[, kwargs]) call, one command each."""
    import pickle

    commands = [new("s1", "sell", 100, 5), new("b1", "buy", 100, 2), cancel("s1")]
    path = tmp_path / "raft.journal"
    journal = FileJournal(str(path))
    journal.add(b"\x01", 1, 1)  # the no-op a new leader appends
    journal.add(b"\x00" + pickle.dumps((0, (commands[0],), {})), 2, 1)
    journal.add(b"\x00" + pickle.dumps((0, (commands[1],))), 3, 1)
    journal.add(b"\x00" + pickle.dumps((0, (commands[2],))), 4, 1)
    journal.setRaftCommitIndex(3)
    journal.onOneSecondTimer()  # PySyncObj stores the commit index about once a second
    journal._destroy()

    committed = read_commands(path)
    assert [(entry.raft_index, entry.text) for entry in committed] == [
        (2, commands[0]),
        (3, commands[1]),
    ]
    everything = read_commands(path, include_uncommitted=True)
    assert (
        replay(everything).state_hash()
        == replay([(2, commands[0]), (3, commands[1]), (4, commands[2])]).state_hash()
    )


def test_batched_entries_read_back_one_command_each(tmp_path: Path) -> None:
    """Group commit: an entry's call carries a list of command texts; each is read back with the
    entry's index and term and its position, and replays to the state the node had."""
    import pickle

    first = [new("s1", "sell", 100, 5), new("b1", "buy", 100, 2)]
    second = [new("b2", "buy", 100, 1), cancel("s1"), encode(MarkPublished(2))]
    path = tmp_path / "raft.journal"
    journal = FileJournal(str(path))
    journal.add(b"\x01", 1, 1)
    journal.add(b"\x00" + pickle.dumps((0, (first,))), 2, 1)
    journal.add(b"\x00" + pickle.dumps((0, (new("old", "buy", 90, 1),))), 3, 1)  # unbatched
    journal.add(b"\x00" + pickle.dumps((0, (second,), {})), 4, 2)
    journal._destroy()

    entries = read_entries(path, include_uncommitted=True)
    assert [(e.raft_index, e.term, e.position) for e in entries] == [
        (2, 1, 0), (2, 1, 1), (3, 1, 0), (4, 2, 0), (4, 2, 1), (4, 2, 2),
    ]  # fmt: skip
    assert [e.text for e in entries] == [*first, new("old", "buy", 90, 1), *second]
    node = EngineState()
    for index, texts in [(2, first), (3, [new("old", "buy", 90, 1)]), (4, second)]:
        for position, text in enumerate(texts):
            node.apply(index, text, position)
    assert replay(read_commands(path, include_uncommitted=True)).state_hash() == node.state_hash()


@pytest.mark.parametrize(
    "argument",
    [[], [1, "x"], ("a",), 5, None],
    ids=["empty batch", "not all text", "tuple", "number", "none"],
)
def test_a_journal_call_that_is_no_batch_of_texts_is_refused(
    tmp_path: Path, argument: object
) -> None:
    import pickle

    path = tmp_path / "raft.journal"
    journal = FileJournal(str(path))
    journal.add(b"\x00" + pickle.dumps((0, (argument,))), 1, 1)
    journal._destroy()
    with pytest.raises(JournalError, match="entry 1: unexpected call"):
        read_entries(path, include_uncommitted=True)


def test_orders_are_paged_in_arrival_order_also_from_a_restored_state() -> None:
    state = EngineState()
    for index, text in random_log(11, 400):
        state.apply(index, text)
    everything = state.order_records(1, 10_000)
    numbers = [int(str(order["client_order_id"]).removeprefix("c-")) for order in everything]
    assert numbers == sorted(numbers) and len(numbers) > 250  # random_log's new orders: c-<i>
    pages = [state.order_records(start, 7) for start in range(1, len(everything) + 1, 7)]
    assert [order for page in pages for order in page] == everything
    image = state.__getstate__()
    image["orders"] = list(reversed(image["orders"]))  # as a folded checkpoint log may give
    restored = EngineState.__new__(EngineState)
    restored.__setstate__(image)
    assert restored.order_records(1, 10_000) == everything
    assert restored.order_records(len(everything) - 2, 7) == everything[-3:]
