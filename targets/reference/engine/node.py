"""One Raft member of the engine: PySyncObj replication around the pure state machine.

`ReplicatedEngine` (a PySyncObj consumer) owns the `EngineState`; its one replicated method,
`apply_batch(command_texts)`, is the only place the state changes. PySyncObj runs it on its
tick thread for every committed entry, in log order, on every replica. HTTP and publisher
threads only read, under the same lock.

`EngineNode` (the SyncObj subclass) configures Raft, proposes commands on the leader (group
commit: the commands queued since the last tick go as one entry, batching.py), maps
PySyncObj's addresses back to node ids and prints one `ROLE ...` line per change of
(role, term, leader), checked at the end of every tick.

The Raft journal lives in `<data-dir>/raft.journal`, so a restarted node replays its own log
before it catches up with the leader. Log compaction is off: the journal stays the complete
command history (see journal.py for reading it back).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pysyncobj import (
    FAIL_REASON,
    SyncObj,
    SyncObjConf,
    SyncObjConsumer,
    replicated,
)
from pysyncobj.pipe_notifier import PipeNotifier

from targets.reference.bugs import REAPPLIED_SUFFIX
from targets.reference.engine.batching import CommandBatcher, Pending, hand_out
from targets.reference.engine.commands import (
    CancelOrder,
    CommandError,
    MarkPublished,
    NewOrder,
    decode,
    encode,
)
from targets.reference.engine.journal import JOURNAL_FILE
from targets.reference.engine.source_address import bind_outgoing_raft_sockets
from targets.reference.engine.state import EngineState, Result

# PySyncObj's _RAFT_STATE values, as PROTOCOL.md names them.
ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}
DUMP_FILE = "raft.dump"
# Compaction would truncate the journal, which is also the replay/forensics record.
_NEVER_COMPACT = 2**62
# On loopback a dead peer is noticed quickly; PySyncObj's 5 s retry would slow every restart.
_CONNECTION_RETRY_S = 0.1
_RESTART_ELECTION_GRACE_MIN_S = 1.0
_BIND_RETRY_S = 0.2
_BIND_ATTEMPTS = 25
# PySyncObj drops a connection on which nothing was read for connectionTimeout, but checks
# only when it sends. Followers never talk to each other, so after a leader dies the first
# RequestVote between them hits the stale check and is lost: every failover took two
# elections (~450 ms instead of ~250 ms). A small message to every peer keeps all links warm.
_CONNECTION_TIMEOUT_S = 1.0
_KEEPALIVE_PERIOD_S = 0.2
_KEEPALIVE_MESSAGE = {"type": "hftchaos_keepalive"}  # unknown types are ignored on receipt


@dataclass(frozen=True)
class RaftTimings:
    election_timeout_min_s: float = 0.150
    election_timeout_max_s: float = 0.300
    append_entries_period_s: float = 0.010
    tick_s: float = 0.002
    leader_fallback_timeout_s: float = 1.0

    def problems(self) -> list[str]:
        """What PySyncObj would reject (its own check is a bare assert), said for a person."""
        found = []
        if self.tick_s <= 0 or self.append_entries_period_s <= 0:
            found.append("--tick-ms and --append-entries-period-ms must be positive")
        if self.election_timeout_min_s <= 3 * self.append_entries_period_s:
            found.append(
                "--election-timeout-min-ms must exceed 3 x --append-entries-period-ms "
                f"({self.election_timeout_min_s * 1000:g} <= 3 x "
                f"{self.append_entries_period_s * 1000:g})"
            )
        if self.election_timeout_max_s <= self.election_timeout_min_s:
            found.append("--election-timeout-max-ms must exceed --election-timeout-min-ms")
        if self.leader_fallback_timeout_s <= self.append_entries_period_s:
            found.append("--leader-fallback-timeout-ms must exceed --append-entries-period-ms")
        return found


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    raft_address: str
    peers: dict[str, str]  # node id -> Raft address of every other member
    data_dir: Path
    timings: RaftTimings = RaftTimings()


@dataclass(frozen=True)
class Acked:
    result: Result


@dataclass(frozen=True)
class NotLeader:
    """Nothing was proposed: the client may safely retry on `leader`."""

    leader: str | None


@dataclass(frozen=True)
class Unknown:
    """Proposed, but no commit seen in time: it may or may not execute."""

    reason: str


SubmitOutcome = Acked | NotLeader | Unknown


class ReplicatedEngine(SyncObjConsumer):  # type: ignore[misc]  # PySyncObj is untyped
    def __init__(self, bugs: frozenset[str] = frozenset(), diverge: bool = False) -> None:
        """`bugs`: deliberate bugs of the state machine; `diverge`: this replica is the one
        the deliberate bug diverge_replica picked (targets/reference/bugs.py)."""
        super().__init__()
        self._lock = threading.Lock()
        self._state = EngineState(bugs)
        self._diverge = diverge
        # The Raft index the state reflects: the last command applied, or a later no-op entry.
        self._applied_through = 0
        # Called (on the tick thread) after an entry that created executions, e.g. to wake
        # the Kafka publisher.
        self.on_new_executions: Callable[[], None] | None = None

    @replicated  # type: ignore[untyped-decorator]  # PySyncObj is untyped
    def apply_batch(self, command_texts: Sequence[str]) -> list[Result]:
        """One entry: its commands in order, one result each (the proposers' answers)."""
        # PySyncObj counts an entry as applied only after this returns.
        index = self._syncObj.raftLastApplied + 1
        if self._diverge:  # deliberate bug diverge_replica: this replica applies another command
            command_texts = [_diverged(text) for text in command_texts]
        # The whole entry under one hold of the lock: a reader sees all of it or none of it,
        # so the state hash it reports is the one a replay up to `index` gives.
        with self._lock:
            executions_before = self._state.last_exec_seq
            results = [
                self._state.apply(index, text, position)
                for position, text in enumerate(command_texts)
            ]
            self._applied_through = index
            traded = self._state.last_exec_seq != executions_before
        if traded and self.on_new_executions is not None:
            self.on_new_executions()
        return results

    def note_applied_through(self, raft_index: int) -> None:
        """Called on the tick thread after PySyncObj applied entries (no-ops included)."""
        with self._lock:
            self._applied_through = max(self._applied_through, raft_index)

    @contextmanager
    def reading(self) -> Iterator[tuple[EngineState, int]]:
        """The state and the Raft index it reflects, held still while the caller reads."""
        with self._lock:
            yield self._state, self._applied_through

    # Used by PySyncObj for full dumps (only if someone forces a log compaction).
    def _serialize(self) -> dict[str, object]:
        return {"state": self._state}

    def _deserialize(self, data: dict[str, object]) -> None:
        state = data["state"]
        if not isinstance(state, EngineState):
            raise TypeError("dump does not hold an EngineState")
        with self._lock:
            self._state = state
            self._applied_through = state.last_index


class EngineNode(SyncObj):  # type: ignore[misc]  # PySyncObj is untyped
    def __init__(
        self, config: NodeConfig, engine: ReplicatedEngine, bugs: frozenset[str] = frozenset()
    ) -> None:
        self.config = config
        self.engine = engine
        self._bugs = bugs  # deliberate bugs (targets/reference/bugs.py); empty normally
        self._node_ids = {address: node for node, address in config.peers.items()}
        self._node_ids[config.raft_address] = config.node_id
        self._raft_state = 0
        self._reported: tuple[str, int, str | None] | None = None
        self._role_changed_ns: tuple[int, int] | None = None
        self._role_since_ns = time.monotonic_ns()  # for role_age_ms in the status
        self._wakeup: PipeNotifier | None = None
        self._wakeup_installed = False
        self._next_keepalive = 0.0
        self._batcher = CommandBatcher()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        bind_outgoing_raft_sockets(config.raft_address.rpartition(":")[0])
        super().__init__(
            config.raft_address,
            sorted(config.peers.values()),
            _syncobj_conf(config, on_state_changed=self._on_raft_state_changed),
            consumers=[engine],
        )
        self.addOnTickCallback(self._after_tick)
        self._hold_first_election_after_restart(config.timings)

    def _hold_first_election_after_restart(self, timings: RaftTimings) -> None:
        """A node restarted from its journal rejoins a cluster that most likely has a leader.
        PySyncObj has no pre-vote: if the node's first election timeout fires before the
        leader's heartbeats reach it (journal replay, reconnects), it stands at a higher term
        and deposes a healthy leader; the follower-kill scenario measured ~190 ms of downtime
        from a follower coming back. So a restarted node waits a few election timeouts before
        it may stand; heartbeats from a leader keep postponing it as usual. A fresh cluster
        (empty journals) elects at once."""
        if int(self.raftCurrentTerm) == 0 and self._getRaftLogSize() <= 1:
            return
        grace_s = max(_RESTART_ELECTION_GRACE_MIN_S, 4 * timings.election_timeout_max_s)
        self._SyncObj__raftElectionDeadline = time.monotonic() + grace_s

    # ----------------------------------------------------------------- Raft view

    @property
    def role(self) -> str:
        return ROLE_NAMES.get(self._raft_state, "follower")

    @property
    def term(self) -> int:
        return int(self.raftCurrentTerm)

    def leader_node_id(self) -> str | None:
        leader = self._getLeader()
        if leader is None:
            return None
        address = str(leader.id)
        return self._node_ids.get(address, address)

    def is_leader(self) -> bool:
        return bool(self._isLeader())

    # ----------------------------------------------------------------- fast commits
    #
    # PySyncObj offers two modes: batched (new entries wait for the next heartbeat, so a commit
    # takes ~appendEntriesPeriod) or unbatched (one AppendEntries per command: ~2 ms commits but
    # throughput falls under concurrency). In between: batched mode, plus (1) the leader sends
    # whatever a tick added to its log at the end of that tick, and (2) a proposer wakes the
    # tick thread through a pipe instead of leaving the command queued until the poll times
    # out. Both touch PySyncObj 0.3 internals (pinned <0.4); if they are missing the node falls
    # back to plain batched mode.

    def _checkCommandsToApply(self) -> None:  # noqa: N802 - overrides PySyncObj's hook
        self._propose_queued()
        log_size = self._getRaftLogSize()
        super()._checkCommandsToApply()
        if self._isLeader() and self._getRaftLogSize() != log_size:
            send_now = getattr(self, "_SyncObj__sendAppendEntries", None)
            if send_now is not None:
                send_now()

    # ----------------------------------------------------------------- log repair
    #
    # Found by the leader-isolation scenario: an old leader that appended entries while cut off
    # never caught up after the heal. PySyncObj's leader sends its whole tail in several batches
    # per tick; the follower answers the first (term mismatch) with "retry at prevLogIdx" and
    # every later one (prev entry missing) with "retry after my last entry", and the last answer
    # wins: the leader retries the same place forever. Answering every failure with "retry after
    # my commit index" makes all answers agree and is always safe, since committed entries match
    # the leader's (log matching), so one round trip repairs the log.

    def _SyncObj__sendNextNodeIdx(  # noqa: N802 - overrides PySyncObj's (name-mangled) method
        self,
        node: object,
        reset: bool = False,
        nextNodeIdx: int | None = None,  # noqa: N803 - PySyncObj calls it by this keyword
        success: bool = False,
    ) -> None:
        retry_at = nextNodeIdx
        if reset and not success:
            retry_at = int(self._SyncObj__raftCommitIndex) + 1
        super()._SyncObj__sendNextNodeIdx(node, reset, retry_at, success)

    # ----------------------------------------------------------------- no rewinds
    #
    # PySyncObj's leader advances a follower's next index as it sends, so several batches are in
    # flight at once (the more so with the sends at the end of each tick above). But the answer
    # to an earlier batch sets the next index back to just after that batch: the leader sends the
    # later batches again, and the follower, whose log already holds them, truncates and appends
    # them again ("truncating already-applied log entries", many times a run, even with no fault).
    # An acknowledgement must only move the next index forward; a rejection (reset) still moves
    # it wherever the follower asks.

    def _SyncObj__onMessageReceived(self, node: object, message: object) -> None:  # noqa: N802
        next_index = getattr(self, "_SyncObj__raftNextIndex", None)
        acknowledgement = (
            isinstance(message, dict)
            and message.get("type") == "next_node_idx"
            and message.get("success")
            and not message.get("reset")
            and isinstance(next_index, dict)
        )
        before = next_index.get(node) if acknowledgement and next_index is not None else None
        super()._SyncObj__onMessageReceived(node, message)
        if before is not None and next_index is not None and next_index.get(node, before) < before:
            next_index[node] = before

    def _propose_queued(self) -> None:
        """Group commit, on the tick thread: the commands queued since the last tick become
        as few entries as the batch bounds allow. PySyncObj takes them into the log right after
        this, in the same tick, so leadership checked here still holds when they are appended."""
        batches = self._batcher.take_batches()
        if not batches:
            return
        if not self._isLeader():
            # Lost leadership since the caller checked: no log has these, a retry is safe.
            for batch in batches:
                hand_out(batch, None, FAIL_REASON.MISSING_LEADER, FAIL_REASON.SUCCESS)
            return
        for batch in batches:
            self.engine.apply_batch(
                [item.text for item in batch], callback=partial(_answer_batch, batch)
            )

    def _wake_tick_thread(self) -> None:
        if self._wakeup is None:
            return
        # A full pipe means wake-ups are already pending: the tick thread is coming anyway.
        with contextlib.suppress(BlockingIOError):
            self._wakeup.notify()

    def _install_wakeup(self) -> None:
        # On the tick thread: the poller is only ever touched from there.
        self._wakeup_installed = True
        self._wakeup = PipeNotifier(self._poller)

    def _keep_links_alive(self) -> None:
        now = time.monotonic()
        if now < self._next_keepalive:
            return
        self._next_keepalive = now + _KEEPALIVE_PERIOD_S
        transport = getattr(self, "_SyncObj__transport", None)
        if transport is None:
            return
        for peer in self.otherNodes:
            transport.send(peer, _KEEPALIVE_MESSAGE)

    def _on_raft_state_changed(self, _old: int, new: int) -> None:
        # Stamp the change here, when PySyncObj makes it, not when the line is printed after
        # the tick: the harness compares its own failover figure with these stamps.
        self._raft_state = new
        self._role_changed_ns = (time.monotonic_ns(), time.time_ns())
        self._role_since_ns = self._role_changed_ns[0]

    def _after_tick(self) -> None:
        if not self._wakeup_installed:
            self._install_wakeup()
        self.engine.note_applied_through(int(self.raftLastApplied))
        self._keep_links_alive()
        view = (self.role, self.term, self.leader_node_id())
        if view != self._reported:
            self._reported = view
            role, term, leader = view
            stamp, self._role_changed_ns = self._role_changed_ns, None
            mono_ns, wall_ns = stamp or (time.monotonic_ns(), time.time_ns())
            print(
                f"ROLE {self.config.node_id} {role} term={term} leader={leader or 'none'} "
                f"mono_ns={mono_ns} wall_ns={wall_ns}",
                file=sys.stderr,
                flush=True,
            )
            if role == "leader" and "reapply_on_new_leader" in self._bugs:  # deliberate bug
                self._reapply_last_order()

    def _reapply_last_order(self) -> None:
        """The deliberate bug reapply_on_new_leader: a new leader "recovers" the last order
        it knows of by proposing it again, under a fresh id the engine cannot deduplicate."""
        with self.engine.reading() as (state, _):
            last = state.last_new_order()
        if last is None:
            return
        again = dataclasses.replace(
            last, client_order_id=f"{last.client_order_id}{REAPPLIED_SUFFIX}", ts_ns=time.time_ns()
        )
        self.engine.apply_batch([encode(again)])

    # ----------------------------------------------------------------- proposing

    def submit(self, command: NewOrder | CancelOrder, timeout_s: float) -> SubmitOutcome:
        """Propose one client command on the leader and wait for it to be applied here."""
        return self.submit_many([command], timeout_s)[0]

    def submit_many(
        self, commands: Sequence[NewOrder | CancelOrder], timeout_s: float
    ) -> list[SubmitOutcome]:
        """Propose client commands on the leader, in order, and wait (at most `timeout_s` for
        all of them) until each is applied here; one outcome per command, each its own: the
        group commit may put them in different entries, and a command whose entry did not
        commit in time is unknown while the others are acked."""
        if not self.is_leader():
            return [NotLeader(self.leader_node_id())] * len(commands)
        # The leader's wall clock, read before proposing, is a command's only time source.
        stamped = [dataclasses.replace(command, ts_ns=time.time_ns()) for command in commands]
        if "ack_before_commit" in self._bugs:  # deliberate bug: acked before any replica has it
            for command in stamped:
                self.engine.apply_batch([encode(command)])
            self._wake_tick_thread()
            return [Acked(_provisional_result(command)) for command in stamped]
        waiter = _BatchWaiter(len(stamped))
        queued = [
            (encode(command), partial(waiter.on_result, position))
            for position, command in enumerate(stamped)
        ]
        if self._batcher.add_many(queued):
            self._wake_tick_thread()
        return [self._outcome_of(answer) for answer in waiter.answers(timeout_s)]

    def _outcome_of(self, answer: tuple[object, object] | None) -> SubmitOutcome:
        if answer is None:
            return Unknown(_failure_reason("Timeout"))
        result, error = answer
        if error == FAIL_REASON.MISSING_LEADER:
            # Leadership was lost before the tick thread took the command: no log has it.
            return NotLeader(self.leader_node_id())
        if error != FAIL_REASON.SUCCESS:
            return Unknown(_failure_reason(error))
        if not isinstance(result, dict):
            return Unknown("no result from the state machine")
        return Acked(result)

    def propose_published(self, seq: int) -> None:
        """Fire and forget: a lost proposal is repeated by the publisher's next one. It rides
        in the next entry with the client commands."""
        if self._batcher.add(encode(MarkPublished(seq)), _ignore_result):
            self._wake_tick_thread()

    # ----------------------------------------------------------------- reading

    def status(self) -> dict[str, object]:
        with self.engine.reading() as (state, applied_through):
            state_hash = state.state_hash()
            last_exec_seq = state.last_exec_seq
            published_seq = state.published_seq
        return {
            "node_id": self.config.node_id,
            "role": self.role,
            "term": self.term,
            "leader": self.leader_node_id(),
            # How long this node has held its role, by its own monotonic clock: a duration, so
            # a harness on another host can place the election without sharing a clock.
            "role_age_ms": (time.monotonic_ns() - self._role_since_ns) / 1e6,
            "commit_index": int(self.raftCommitIndex),
            "last_applied": applied_through,
            "state_hash": state_hash,
            "state_hash_index": applied_through,
            "last_exec_seq": last_exec_seq,
            "published_seq": published_seq,
            # This node's wall clock, so a harness can see a skewed clock (not used by Raft).
            "wall_ns": time.time_ns(),
        }

    def order_record(self, client_order_id: str) -> dict[str, object] | None:
        with self.engine.reading() as (state, _):
            return state.order_record(client_order_id)

    def order_records(self, from_arrival: int, limit: int) -> list[dict[str, object]]:
        with self.engine.reading() as (state, _):
            return state.order_records(from_arrival, limit)

    def execution_records(self, from_seq: int, limit: int) -> list[dict[str, object]]:
        with self.engine.reading() as (state, _):
            return state.execution_records(from_seq, limit)

    def published_seq(self) -> int:
        with self.engine.reading() as (state, _):
            return state.published_seq


class _BatchWaiter:
    """PySyncObj's own `sync=True` for the commands of one request, with the wake-up between
    proposing and waiting.

    A bare lock, held until the last answer comes, rather than an Event per command: an Event
    is a Condition with its own lock and waiter list, and making, setting and waiting on one
    per order was ~20 % of the leader's GIL-holding samples under load (py-spy)."""

    def __init__(self, count: int) -> None:
        self._answers: list[tuple[object, object] | None] = [None] * count
        self._missing = count
        self._lock = threading.Lock()  # answers come on the tick thread, reads on an HTTP one
        self._all_answered = threading.Lock()
        if count:
            self._all_answered.acquire()

    def on_result(self, position: int, result: object, error: object) -> None:
        with self._lock:
            if self._answers[position] is not None:
                return  # a second answer (never expected) must not count twice
            self._answers[position] = (result, error)
            self._missing -= 1
            if self._missing == 0:
                self._all_answered.release()

    def answers(self, timeout_s: float) -> list[tuple[object, object] | None]:
        """Each command's (result, error), or None for one not answered within `timeout_s`."""
        self._all_answered.acquire(timeout=timeout_s)
        with self._lock:
            return list(self._answers)


def _answer_batch(batch: list[Pending], results: object, error: object) -> None:
    hand_out(batch, results, error, FAIL_REASON.SUCCESS)


def _ignore_result(_result: object, _error: object) -> None:
    pass


def _provisional_result(command: NewOrder | CancelOrder) -> Result:
    """What the deliberate bug ack_before_commit answers: a guess, since nothing was applied."""
    if isinstance(command, CancelOrder):
        return {"order": None, "executions": [], "cancelled": True, "reason": None}
    order: dict[str, object] = {
        "client_order_id": command.client_order_id,
        "account": command.account,
        "symbol": command.symbol,
        "side": str(command.side),
        "price": command.price,
        "quantity": command.quantity,
        "filled": 0,
        "status": "new",
        "ts_ns": command.ts_ns,
    }
    return {"order": order, "executions": [], "duplicate": False}


def _diverged(command_text: str) -> str:
    """The deliberate bug diverge_replica: one more of everything this replica is asked for."""
    try:
        command = decode(command_text)
    except CommandError:
        return command_text
    if not isinstance(command, NewOrder):
        return command_text
    return encode(dataclasses.replace(command, quantity=command.quantity + 1))


def _syncobj_conf(config: NodeConfig, on_state_changed: object) -> SyncObjConf:
    timings = config.timings
    return SyncObjConf(
        autoTick=True,
        autoTickPeriod=timings.tick_s,
        raftMinTimeout=timings.election_timeout_min_s,
        raftMaxTimeout=timings.election_timeout_max_s,
        appendEntriesPeriod=timings.append_entries_period_s,
        leaderFallbackTimeout=timings.leader_fallback_timeout_s,
        connectionTimeout=max(_CONNECTION_TIMEOUT_S, timings.election_timeout_max_s),
        connectionRetryTime=_CONNECTION_RETRY_S,
        bindRetryTime=_BIND_RETRY_S,
        maxBindRetries=_BIND_ATTEMPTS,
        # A command that finds no leader fails at once (answered 421) instead of waiting in
        # PySyncObj's queue and being forwarded after the client has given up.
        commandsWaitLeader=False,
        journalFile=str(config.data_dir / JOURNAL_FILE),
        fullDumpFile=str(config.data_dir / DUMP_FILE),
        logCompactionMinEntries=_NEVER_COMPACT,
        logCompactionMinTime=_NEVER_COMPACT,
        onStateChanged=on_state_changed,
    )


def _failure_reason(code: object) -> str:
    reasons = {
        FAIL_REASON.QUEUE_FULL: "raft command queue full",
        FAIL_REASON.DISCARDED: "entry discarded by a new leader",
        FAIL_REASON.NOT_LEADER: "forwarded after losing leadership; outcome unknown",
        FAIL_REASON.LEADER_CHANGED: "leader changed before commit",
        FAIL_REASON.REQUEST_DENIED: "request denied",
        FAIL_REASON.UNKNOWN_OUTCOME: "unknown outcome",
    }
    if code == "Timeout":
        return "no commit within the commit timeout"
    return reasons.get(code, f"raft error {code!r}")
