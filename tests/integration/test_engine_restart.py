"""A restarted engine node takes part in Raft while it is still replaying its journal, and
starts from its state checkpoint when the journal holds the entry the checkpoint ends with.

PySyncObj applied a restarted node's whole backlog in one tick of its Raft thread: until the
replay was over the node neither voted nor took AppendEntries, so it did not know the leader
either. The reference node applies for about a heartbeat period per tick (node.py), and this
test sees the restarted node name the leader while its state is still behind its commit index.
On three real engine processes, with a journal of 20,000 commands.

A checkpoint (checkpoint.py) cuts the replay to the entries after it: no status of the restarted
node shows a replay from the first entry, and it reaches the leader's state hash. One whose
entry is not in the journal with its term is ignored, and the node replays from the start.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from targets.reference.engine.checkpoint import (
    CHECKPOINT_FILE,
    checkpoint_bytes,
    read_checkpoint,
)
from targets.reference.engine.journal import JOURNAL_FILE, stored_commit_index
from tests.integration.test_engine_cluster import (
    EngineProcess,
    cluster,
    leader_of,
    new_order,
    spawn,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
__all__ = ["cluster"]  # the fixture, imported so pytest finds it here

COMMANDS = 20_000
PER_LIST = 128  # the engine's group-commit bound: one entry per list
# Enough for a replay of ~3 s, well past a restarted node's election grace of 1 s.
LONG_REPLAY_COMMANDS = 80_000


def fill_journals(
    nodes: list[EngineProcess], commands: int = COMMANDS
) -> tuple[EngineProcess, int, EngineProcess]:
    """`commands` orders through the leader; (leader, term, a follower that applied them all)."""
    leader, term = wait_for("a first leader", lambda: leader_of(nodes), timeout_s=15)
    numbers = itertools.count()
    for _ in range(commands // PER_LIST + 1):
        orders = [
            new_order(f"r-{n}", "buy" if n % 2 else "sell", 10_000 + n % 50, 1)
            for n in itertools.islice(numbers, PER_LIST)
        ]
        status, body = leader.post_list(list(orders))
        assert status == 200, body
        assert {answer["outcome"] for answer in body["outcomes"]} == {"acked"}, body
    follower = next(node for node in nodes if node is not leader)
    leader_status = leader.status()
    assert leader_status is not None
    wait_for(
        "the follower to apply everything",
        lambda: (
            (follower.status() or {}).get("last_applied", 0) >= leader_status["commit_index"]
            or None
        ),
        timeout_s=30,
    )
    return leader, term, follower


def data_dir(node: EngineProcess) -> Path:
    return node.stderr_path.parent / node.node_id  # spawn's --data-dir


def kill(node: EngineProcess) -> None:
    assert node.process is not None
    node.process.kill()
    node.process.wait(timeout=10)


def test_a_restarted_node_knows_the_leader_before_its_replay_is_over(
    cluster: dict[str, EngineProcess],
) -> None:
    nodes = list(cluster.values())
    leader, term, follower = fill_journals(nodes)
    leader_status = leader.status()
    assert leader_status is not None
    time.sleep(1.5)  # the commit index is stored about once a second: let it catch up
    kill(follower)
    stored = stored_commit_index(data_dir(follower) / JOURNAL_FILE)
    assert stored >= leader_status["commit_index"], (stored, leader_status)
    # Without its checkpoint the node replays the whole journal: the case this test is about.
    (data_dir(follower) / CHECKPOINT_FILE).unlink(missing_ok=True)
    spawn(follower, cluster, follower.stderr_path.parent)

    behind_yet_in_the_cluster = []
    last_seen: dict[str, object] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = follower.status()
        if status is None:
            time.sleep(0.002)
            continue
        last_seen = status
        # The node never reports less than it had committed before the kill: a bounded apply
        # lowers PySyncObj's commit index for each chunk, and `status()` must not show that.
        assert int(status["commit_index"]) >= stored, status
        behind = int(status["last_applied"]) < int(status["commit_index"])
        if status["leader"] == leader.node_id and status["term"] == term and behind:
            behind_yet_in_the_cluster.append(status)
        if not behind and status["leader"] is not None:
            break
        time.sleep(0.002)
    else:
        raise AssertionError(f"the restarted node never caught up: {last_seen}")
    assert behind_yet_in_the_cluster, (
        "the restarted node named the leader only once its replay was over: "
        f"last status {last_seen}"
    )
    first = behind_yet_in_the_cluster[0]
    assert int(first["commit_index"]) - int(first["last_applied"]) > 10, first


def statuses_until_same_state(node: EngineProcess, leader: EngineProcess) -> list[int]:
    """The last_applied of every status `node` answers until it reports the leader's state."""
    applied: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = node.status()
        if status is not None:
            applied.append(int(status["last_applied"]))
            if same_state_as(node, leader) is not None:
                return applied
        time.sleep(0.002)
    raise AssertionError(f"{node.node_id} never reached the leader's state: {applied[-5:]}")


def same_state_as(node: EngineProcess, leader: EngineProcess) -> dict[str, object] | None:
    mine, theirs = node.status(), leader.status()
    if mine is None or theirs is None:
        return None
    at = ("state_hash_index", "state_hash")
    return mine if [mine[k] for k in at] == [theirs[k] for k in at] else None


def test_a_restarted_node_starts_from_its_checkpoint_only_if_its_journal_agrees(
    cluster: dict[str, EngineProcess],
) -> None:
    nodes = list(cluster.values())
    leader, _term, follower = fill_journals(nodes)
    checkpoint = wait_for(
        "a checkpoint of the follower's state",
        lambda: read_checkpoint(data_dir(follower)),
        timeout_s=30,
    )
    kill(follower)
    checkpoint = read_checkpoint(data_dir(follower))  # the newest, now that nothing writes
    assert checkpoint is not None
    assert checkpoint.applied_index > COMMANDS // PER_LIST // 2, checkpoint.applied_index

    spawn(follower, cluster, follower.stderr_path.parent)
    # Nothing is applied until the checkpoint is read, and then it is all there at once: no
    # status shows a replay from the first entry on the way to the leader's state. (Index 1 is
    # the no-op every PySyncObj log starts with, counted as applied from the start.)
    applied = statuses_until_same_state(follower, leader)
    assert not [n for n in applied if 1 < n < checkpoint.applied_index], applied
    restored = f"CHECKPOINT {follower.node_id} restored index={checkpoint.applied_index} "
    assert restored in follower.stderr_path.read_text()

    # A checkpoint whose last entry the journal holds in another term is someone else's
    # history: the node must not start from it.
    kill(follower)
    foreign = checkpoint_bytes(
        checkpoint.applied_index, checkpoint.applied_term + 100, checkpoint.state
    )
    (data_dir(follower) / CHECKPOINT_FILE).write_bytes(foreign)
    spawn(follower, cluster, follower.stderr_path.parent)
    applied = statuses_until_same_state(follower, leader)
    assert [n for n in applied if 1 < n < checkpoint.applied_index], applied  # replayed
    assert f"CHECKPOINT {follower.node_id} ignored" in follower.stderr_path.read_text()


@pytest.mark.timeout(240)
def test_a_node_still_replaying_lets_an_up_to_date_one_take_over(
    cluster: dict[str, EngineProcess],
) -> None:
    """Once leader, a node replaying its journal could answer no order before the replay was
    over. The replaying node here has the shortest election timeout (40-60 ms against
    400-500), so without the wait it stands first and wins; with it, the up-to-date node
    leads."""
    nodes = list(cluster.values())
    leader, _term, replaying = fill_journals(nodes, LONG_REPLAY_COMMANDS)
    up_to_date = next(node for node in nodes if node not in (leader, replaying))
    quick = ("--election-timeout-min-ms=40", "--election-timeout-max-ms=60")
    slow = ("--election-timeout-min-ms=400", "--election-timeout-max-ms=500")
    stickiness = ("--leader-stickiness-ms=50",)  # both grant pre-votes soon after the kill

    kill(up_to_date)  # back with slow timeouts, from its checkpoint: at once up to date
    up_to_date.extra_args = slow + stickiness
    spawn(up_to_date, cluster, up_to_date.stderr_path.parent)
    wait_for(
        "the slow node to catch up",
        lambda: same_state_as(up_to_date, leader),
        timeout_s=60,
    )
    time.sleep(1.5)  # the commit index is stored about once a second: let it catch up
    kill(replaying)  # back with quick timeouts and without its checkpoint: a long replay
    replay_end = stored_commit_index(data_dir(replaying) / JOURNAL_FILE)
    (data_dir(replaying) / CHECKPOINT_FILE).unlink(missing_ok=True)
    replaying.extra_args = quick + stickiness
    spawn(replaying, cluster, replaying.stderr_path.parent)
    wait_for(
        "the replaying node to follow the leader, far from the end of its replay",
        lambda: (
            status
            if (status := replaying.status()) is not None
            and status["leader"] == leader.node_id
            and int(status["last_applied"]) < replay_end - 100
            else None
        ),
        timeout_s=30,
    )

    kill(leader)
    new_leader, _ = wait_for(
        "a new leader", lambda: leader_of([replaying, up_to_date]), timeout_s=15
    )
    still_replaying = replaying.status()
    assert still_replaying is not None
    assert int(still_replaying["last_applied"]) < replay_end, (
        "the replay ended before the election: the test proves nothing",
        still_replaying,
    )
    assert new_leader.node_id == up_to_date.node_id, (
        f"{new_leader.node_id} took over while replaying: {still_replaying}"
    )
