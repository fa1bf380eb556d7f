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
command history (see journal.py for reading it back). A checkpoint of the state beside it
(checkpoint.py) lets a restarted node replay only the journal's tail.
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
from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.pipe_notifier import PipeNotifier

from targets.reference import stall_log
from targets.reference.bugs import REAPPLIED_SUFFIX
from targets.reference.engine.batching import CommandBatcher, Pending, hand_out
from targets.reference.engine.checkpoint import (
    Checkpoint,
    CheckpointLog,
    read_checkpoint,
    remove_legacy,
)
from targets.reference.engine.commands import (
    CancelOrder,
    CommandError,
    MarkPublished,
    NewOrder,
    decode,
    encode,
)
from targets.reference.engine.journal import JOURNAL_FILE
from targets.reference.engine.pre_vote import (
    PRE_VOTE_REPLY,
    PRE_VOTE_REQUEST,
    LogPosition,
    PreVoteRound,
    VoterView,
    term_to_adopt,
    waits_for_replay,
    would_vote,
)
from targets.reference.engine.source_address import bind_outgoing_raft_sockets
from targets.reference.engine.state import EngineState, Result

# PySyncObj's _RAFT_STATE values, as PROTOCOL.md names them.
_FOLLOWER, _LEADER = 0, 2
ROLE_NAMES = {_FOLLOWER: "follower", 1: "candidate", _LEADER: "leader"}
DUMP_FILE = "raft.dump"
# Compaction would truncate the journal, which is also the replay/forensics record.
_NEVER_COMPACT = 2**62
# On loopback a dead peer is noticed quickly; PySyncObj's 5 s retry would slow every restart.
_CONNECTION_RETRY_S = 0.1
_RESTART_ELECTION_GRACE_MIN_S = 1.0
# A tick applies committed entries for about this long at most (a heartbeat period), a few
# entries at a time: an entry holds at most 128 commands, ~6 ms to apply.
_APPLY_BUDGET_S = 0.010
_APPLY_CHUNK_ENTRIES = 2
_COMMIT_INDEX = "_SyncObj__raftCommitIndex"
_LAST_APPLIED = "_SyncObj__raftLastApplied"
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
    election_timeout_min_s: float = 0.080
    election_timeout_max_s: float = 0.160
    append_entries_period_s: float = 0.010
    tick_s: float = 0.002
    leader_fallback_timeout_s: float = 1.0
    # How long after hearing from a leader a member refuses pre-votes (pre_vote.py). None: the
    # minimum election timeout, Raft's own rule; shorter only makes sense where a test gives
    # followers long timeouts so that one chosen node stands first.
    leader_stickiness_s: float | None = None

    @property
    def stickiness_s(self) -> float:
        if self.leader_stickiness_s is None:
            return self.election_timeout_min_s
        return self.leader_stickiness_s

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
        if self.leader_stickiness_s is not None and self.leader_stickiness_s < 0:
            found.append("--leader-stickiness-ms must not be negative")
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
    # A checkpoint record is appended once this many commands were applied since the last
    # one; 0: never (checkpoint.py).
    checkpoint_min_commands: int = 1000


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

    def restore(self, state: EngineState, raft_index: int) -> None:
        """Start from a checkpoint's state, which reflects the log up to `raft_index`."""
        state.use_bugs(self._state.bugs)
        with self._lock:
            self._state = state
            self._applied_through = raft_index

    def checkpoint_view(self) -> EngineState:
        """The live state, for the checkpoint log: it tracks the state's changes and takes them
        on the tick thread, the state's only mutator."""
        return self._state

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
        self._pre_vote: PreVoteRound | None = None
        self._pre_vote_rounds = 0
        self._may_stand_at_term: int | None = None  # set when a pre-vote round passed
        self._leader_contact_s = -1e9  # monotonic time of the last AppendEntries of a leader
        self._replay_wait_since_s: float | None = None  # pre_vote.waits_for_replay
        # The commit index stored in the journal this node started on, read on the first tick.
        self._replay_until: int | None = None
        self._applying_to = 0  # the real commit index while a bounded apply lowers it
        self._checkpoint_considered = False
        self._checkpoint_read = threading.Event()
        self._checkpoint_found: Checkpoint | None = None
        self._checkpoint_read_ms = 0.0
        self._checkpoints = CheckpointLog(
            config.data_dir, config.checkpoint_min_commands, config.node_id
        )
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # Read beside Raft, not before it or on its thread: a restarted node votes and takes
        # AppendEntries while the state it will start from is read (1-2 s of 110,000 commands
        # on the loaded bench host, during which, read on the tick thread, the node could not
        # vote, and a kill of the leader then found no majority).
        threading.Thread(target=self._read_checkpoint, name="checkpoint-read", daemon=True).start()
        bind_outgoing_raft_sockets(config.raft_address.rpartition(":")[0])
        super().__init__(
            config.raft_address,
            sorted(config.peers.values()),
            _syncobj_conf(config, on_state_changed=self._on_raft_state_changed),
            consumers=[engine],
        )
        self._watch_ticks = stall_log.tick_watch(f"engine {config.node_id}")
        self.addOnTickCallback(self._after_tick)
        self._hold_first_election_after_restart(config.timings)

    # PySyncObj's election deadlines are on its own clock, CLOCK_MONOTONIC_RAW, which is not
    # time.monotonic(): here the two differ by a quarter of a second. Every deadline the node
    # reads or writes is on `raft_clock`.

    def _hold_first_election_after_restart(self, timings: RaftTimings) -> None:
        """A node restarted from its journal rejoins a cluster that most likely has a leader.
        Before pre-vote, a restarted node whose first election timeout fired before the
        leader's heartbeats reached it (journal replay, reconnects) stood at a higher term and
        deposed a healthy leader (follower-kill: ~190 ms of downtime). Pre-vote now stops that
        on its own; the grace only spares the cluster the pre-vote rounds of a node still busy
        replaying its journal. Heartbeats from a leader keep postponing it as usual; a fresh
        cluster (empty journals) elects at once."""
        if int(self.raftCurrentTerm) == 0 and self._getRaftLogSize() <= 1:
            return
        grace_s = max(_RESTART_ELECTION_GRACE_MIN_S, 4 * timings.election_timeout_max_s)
        self._SyncObj__raftElectionDeadline = raft_clock() + grace_s

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

    # ----------------------------------------------------------------- bounded applies
    #
    # PySyncObj applies every committed entry it has not applied yet in one go, on the tick
    # thread. A restarted node replays its whole journal that way: 82,000 commands took 2 s
    # alone and 3 s on the loaded bench host, during which the node neither voted nor took
    # AppendEntries. Killed again and again, the nodes' journals grew and each restart took
    # longer, until a kill found the previous victim still replaying and the cluster without a
    # majority: from the 9th of 20 kills at 1,000/s, failovers of 1-3 s instead of 200-280 ms.
    # Raft needs only the log to vote and replicate, not the applied state, so a tick applies
    # for at most `_APPLY_BUDGET_S` and then lets Raft run; the rest waits for the next tick.

    def _SyncObj__applyLogEntries(self) -> bool:  # noqa: N802 - PySyncObj's (mangled) name
        if self._replay_until is None:
            # The first call, before any message: what the journal says was committed.
            self._replay_until = int(getattr(self, _COMMIT_INDEX))
        if not self._checkpoint_considered:
            if not self._checkpoint_read.is_set():
                return False  # nothing is applied before the state it would start from
            # Here, on the tick thread (applies and Raft's indexes are its own).
            self._checkpoint_considered = True
            self._start_from_checkpoint(self._checkpoint_found)
            self._checkpoint_found = None
        commit_index = int(getattr(self, _COMMIT_INDEX))
        deadline = raft_clock() + _APPLY_BUDGET_S
        need_send = False
        # PySyncObj applies up to its commit index, so each chunk lowers it for the call. The
        # tick thread reads nothing else meanwhile, but `status()` runs on an HTTP thread: it
        # reports `_applying_to`, set before the index is lowered and cleared after it is
        # restored, so it never sees the lowered one (a CI run caught it reporting applied + 2).
        self._applying_to = commit_index
        try:
            while True:
                applied = self._SyncObj__raftLastApplied
                if applied >= commit_index:
                    break
                setattr(self, _COMMIT_INDEX, min(commit_index, applied + _APPLY_CHUNK_ENTRIES))
                try:
                    need_send = bool(super()._SyncObj__applyLogEntries()) or need_send
                finally:
                    setattr(self, _COMMIT_INDEX, commit_index)
                if self._SyncObj__raftLastApplied == applied or raft_clock() >= deadline:
                    break  # no progress (PySyncObj logged why) or this tick's time is spent
        finally:
            self._applying_to = 0
        return need_send

    def _read_checkpoint(self) -> None:
        try:
            remove_legacy(self.config.data_dir)
            started = time.monotonic()
            self._checkpoint_found = read_checkpoint(self.config.data_dir)
            self._checkpoint_read_ms = (time.monotonic() - started) * 1000
        finally:
            self._checkpoint_read.set()

    def _start_from_checkpoint(self, checkpoint: Checkpoint | None) -> None:
        used = checkpoint if checkpoint is not None and self._restore(checkpoint) else None
        # Records are appended after the one the state came from, or to a new file.
        self._checkpoints.begin(self.engine.checkpoint_view(), used)

    def _restore(self, checkpoint: Checkpoint) -> bool:
        index, term = checkpoint.applied_index, checkpoint.applied_term
        entry = self._SyncObj__getEntries(index, 1)
        # The journal must hold the very entry the state ends with; entries up to it were
        # applied, hence committed, hence the same in every log that holds them.
        if not entry or (entry[0][1], entry[0][2]) != (index, term):
            self._say(
                f"CHECKPOINT {self.config.node_id} ignored: the journal has no entry "
                f"{index} of term {term}; replaying from the start"
            )
            return False
        if int(self._SyncObj__raftLastApplied) >= index:
            return False
        self.engine.restore(checkpoint.state, index)
        setattr(self, _LAST_APPLIED, index)
        if int(getattr(self, _COMMIT_INDEX)) < index:
            # The stored commit index is written about once a second and may lag what was
            # applied; an applied entry is committed.
            setattr(self, _COMMIT_INDEX, index)
        self._say(
            f"CHECKPOINT {self.config.node_id} restored index={index} "
            f"commands={checkpoint.state.command_count} "
            f"read in {self._checkpoint_read_ms:.0f} ms"
        )
        return True

    def _append_checkpoint_if_due(self) -> None:
        # Every node, the leader too: taking a record costs the tick thread two list swaps
        # (checkpoint.py), unlike the whole-state forks of before, which only followers made.
        state = self.engine.checkpoint_view()
        if not self._checkpoints.due(state):
            return
        applied = int(self._SyncObj__raftLastApplied)
        entry = self._SyncObj__getEntries(applied, 1)
        if entry:
            self._checkpoints.maybe_append(state, applied, int(entry[0][2]))

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def commit_index(self) -> int:
        """The commit index, also while a bounded apply has lowered PySyncObj's copy."""
        applying_to = self._applying_to  # read first: it is cleared only after the restore
        return max(applying_to, int(self.raftCommitIndex))

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
        if isinstance(message, dict) and self._handled_as_pre_vote(node, message):
            return
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

    # ----------------------------------------------------------------- pre-vote
    #
    # pre_vote.py says why. PySyncObj stands in `_onTick` as soon as its election deadline has
    # passed; the node looks at that deadline first. If no pre-vote round has passed for the
    # term PySyncObj would stand at, it moves the deadline on by a fresh random timeout (so a
    # round that fails is asked again, as an election would be) and asks; once a majority says
    # yes it sets the deadline to 0, and PySyncObj stands on the next tick.

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 - PySyncObj's names
        self._pre_vote_before_standing()
        super()._onTick(timeToWait)

    def _pre_vote_before_standing(self) -> None:
        if self._raft_state == _LEADER:
            self._pre_vote = None
            self._may_stand_at_term = None
            return
        now = raft_clock()
        if self._SyncObj__raftElectionDeadline >= now:
            return
        next_term = self.term + 1
        if self._may_stand_at_term == next_term:
            self._may_stand_at_term = None  # PySyncObj stands in this tick
            return
        self._SyncObj__raftElectionDeadline = now + self._SyncObj__generateRaftTimeout()
        if self._waits_for_replay(now):
            return
        self._pre_vote_rounds += 1
        asking = PreVoteRound(
            number=self._pre_vote_rounds, asked_term=next_term, members=len(self.otherNodes) + 1
        )
        if asking.passed:  # a cluster of one
            self._allow_standing(next_term)
            return
        self._pre_vote = asking
        log = self._log_position()
        request = {
            "type": PRE_VOTE_REQUEST,
            "round": asking.number,
            "term": next_term,
            "last_log_term": log.term,
            "last_log_index": log.index,
        }
        for peer in self.otherNodes:
            self._SyncObj__transport.send(peer, request)

    def _waits_for_replay(self, now: float) -> bool:
        """pre_vote.waits_for_replay, with the node's own replay and waiting time."""
        if self._replay_wait_since_s is not None and (
            self._leader_contact_s > self._replay_wait_since_s
        ):
            self._replay_wait_since_s = None  # a leader was heard from since: a new wait
        if self._replay_until is None:
            return False  # the first tick has not run yet
        left = self._replay_until - int(self._SyncObj__raftLastApplied)
        since = self._replay_wait_since_s
        if not waits_for_replay(left, None if since is None else now - since):
            self._replay_wait_since_s = None
            return False
        if since is None:
            self._replay_wait_since_s = now
        return True

    def _allow_standing(self, term: int) -> None:
        self._pre_vote = None
        self._may_stand_at_term = term
        self._SyncObj__raftElectionDeadline = 0.0

    def _log_position(self) -> LogPosition:
        return LogPosition(
            int(self._SyncObj__getCurrentLogTerm()), int(self._SyncObj__getCurrentLogIndex())
        )

    def _handled_as_pre_vote(self, node: object, message: dict[str, object]) -> bool:
        """Answer or count a pre-vote message (True), or note a leader's AppendEntries and let
        PySyncObj have it (False). Peers are trusted Raft members, but a message that is not
        shaped as expected is dropped rather than allowed to stop the tick thread."""
        kind = message.get("type")
        try:
            if kind == PRE_VOTE_REQUEST:
                self._answer_pre_vote(node, message)
                return True
            if kind == PRE_VOTE_REPLY:
                self._count_pre_vote(node, message)
                return True
        except (KeyError, TypeError, ValueError):
            return True
        term = message.get("term")
        if kind == "append_entries" and isinstance(term, int) and term >= self.term:
            self._leader_contact_s = raft_clock()
            # A leader exists: a round that passed before it was heard of is void.
            self._may_stand_at_term = None
            self._pre_vote = None
        return False

    def _answer_pre_vote(self, node: object, message: dict[str, object]) -> None:
        asked_term = _int(message["term"])
        asker_log = LogPosition(_int(message["last_log_term"]), _int(message["last_log_index"]))
        since_leader_s = raft_clock() - self._leader_contact_s
        voter = VoterView(
            term=self.term,
            log=self._log_position(),
            is_leader=self._raft_state == _LEADER,
            heard_from_leader_recently=since_leader_s < self.config.timings.stickiness_s,
        )
        reply = {
            "type": PRE_VOTE_REPLY,
            "round": _int(message["round"]),
            "term": asked_term,
            "granted": would_vote(asked_term, asker_log, voter),
            "voter_term": voter.term,
        }
        self._SyncObj__transport.send(node, reply)

    def _count_pre_vote(self, node: object, message: dict[str, object]) -> None:
        asking = self._pre_vote
        if asking is None or self._raft_state == _LEADER:
            return
        asked_term = _int(message["term"])
        granted = message["granted"] is True
        if not granted:
            higher = term_to_adopt(self.term, asked_term, _int(message["voter_term"]))
            if higher is not None:
                # Raft's rule for any reply of a higher term: take it, as a follower.
                self._pre_vote = None
                self._SyncObj__setCurrentTerm(higher, None)
                self._SyncObj__setState(_FOLLOWER)
                self._SyncObj__raftLeader = None
            return
        if asking.answer(str(getattr(node, "id", node)), _int(message["round"]), granted):
            self._allow_standing(asking.asked_term)

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
        if self._watch_ticks is not None:
            self._watch_ticks()
        if not self._wakeup_installed:
            self._install_wakeup()
        self.engine.note_applied_through(int(self.raftLastApplied))
        if self._checkpoint_considered:  # never before the node has started from one
            self._append_checkpoint_if_due()
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
            "commit_index": self.commit_index(),
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


def _int(value: object) -> int:
    """A number from a peer's message; anything else is a ValueError (bool included)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return value


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
