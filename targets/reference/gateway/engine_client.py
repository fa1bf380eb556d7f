"""Finds the engine leader and talks to it, knowing exactly when sending again is safe.

A command may be sent again only if no engine can have acted on it:

    engine answered 421 not_leader (nothing proposed)         -> follow its hint, send again
    connect refused or timed out, or writing the request
      failed (the request never fully left this process)     -> rediscover, send again
    request written, then reset, close or timeout before
      the answer                                              -> OutcomeUnknownError, never resend
    engine answered anything else, including 504 unknown     -> returned to the caller as is

All retries of one call share a time budget; when it runs out before any engine took the
command, EngineUnavailableError says that nothing was sent. Reads are idempotent and are retried
after a broken exchange too.

Commands travel in batches (command_batches.py): one POST /commands with a JSON list carries
every command queued for that node, and the engine answers one outcome per command. The rules
above hold per command, from the batch's one exchange: a batch that was never fully written is
unsent for all of its commands, one written and then left without an answer is unknown for all
of them, and otherwise each command has its own answer, retried or returned as a lone one is.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus

from targets.reference.gateway.command_batches import (
    MAX_BATCH_COMMANDS,
    SENDERS_PER_NODE,
    CommandBatches,
)
from targets.reference.gateway.connection_pool import ConnectionPool

JSON_HEADERS = {"Content-Type": "application/json"}


class EngineUnavailableError(Exception):
    """No engine took the request within the budget; nothing was proposed, a retry is safe."""


class OutcomeUnknownError(Exception):
    """The command reached an engine and no answer came back: it may or may not execute."""


@dataclass(frozen=True)
class EngineNode:
    node_id: str
    host: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __str__(self) -> str:
        return f"{self.node_id} ({self.host}:{self.port})"


@dataclass(frozen=True)
class EngineReply:
    http_status: int
    body: dict[str, object]
    node_id: str


WATCH_STATUS_TIMEOUT_S = 0.1
# How long a node that took a command and never answered is not taken back from followers'
# hints (only from its own claim): about the longest election timeout, after which the
# followers have elected or stopped naming it.
DISTRUST_HINTS_S = 1.0


@dataclass(frozen=True)
class EngineClientSettings:
    connect_timeout_s: float = 0.25
    # Above the engine's own commit timeout (2 s), so that a slow commit is reported by the
    # engine as 504 with its reason instead of being cut off here.
    read_timeout_s: float = 3.0
    retry_budget_s: float = 2.0
    status_timeout_s: float = 0.5
    retry_pause_s: float = 0.025
    max_idle_connections_per_node: int = 64
    # How often a background thread asks every node who leads (0: never; only failures make
    # the gateway look). Without it a leader that stalls without failing (paused, cut off from
    # its peers but not from the gateway) keeps getting new orders until they time out, long
    # after the others elected a new leader: leader-pause measured first_commit ~2 s.
    leader_watch_s: float = 0.05
    # Commands to one node go in batches (command_batches.py): this many in flight at once,
    # each of at most this many commands.
    batch_senders_per_node: int = SENDERS_PER_NODE
    batch_max_commands: int = MAX_BATCH_COMMANDS


@dataclass(frozen=True)
class _NotSent:
    problem: str


@dataclass(frozen=True)
class _SentWithoutAnswer:
    problem: str


_Attempt = EngineReply | _NotSent | _SentWithoutAnswer

# A command's outcome in a list's answer -> the status the engine gives it alone (PROTOCOL.md).
_ITEM_STATUS = {
    "acked": HTTPStatus.OK,
    "not_leader": HTTPStatus.MISDIRECTED_REQUEST,
    "unknown": HTTPStatus.GATEWAY_TIMEOUT,
    "bad_request": HTTPStatus.BAD_REQUEST,
}


def parse_engine_nodes(spec: str) -> tuple[EngineNode, ...]:
    """`n1=127.0.0.1:9101,n2=127.0.0.1:9102` -> nodes; ValueError says what is wrong."""
    nodes: list[EngineNode] = []
    for item in (part.strip() for part in spec.split(",")):
        node_id, _, address = item.partition("=")
        host, _, port_text = address.rpartition(":")
        if not node_id or not host or not port_text.isdigit():
            raise ValueError(f"engine {item!r} is not of the form node_id=host:port")
        nodes.append(EngineNode(node_id, host, int(port_text)))
    if len({node.node_id for node in nodes}) != len(nodes):
        raise ValueError(f"engine node ids repeat in {spec!r}")
    return tuple(nodes)


def choose_leader(
    statuses: Mapping[str, Mapping[str, object]],
    nodes: Mapping[str, EngineNode],
    distrusted: frozenset[str] = frozenset(),
) -> EngineNode | None:
    """The leader according to GET /status answers keyed by node id.

    A node claiming leadership wins over hints, and among several claims (an old leader cut off
    in a minority does not know it yet) the highest term wins. A hint naming a `distrusted`
    node (one that just took a command and never answered) is ignored: followers keep naming a
    dead leader until they elect, and through a proxy a dead node takes each command and drops
    it, so following the hint costs every command sent there an unknown outcome. The node's
    own claim still counts: answering its status, it is alive.
    """
    claims = [
        (_term(status), node_id)
        for node_id, status in statuses.items()
        if status.get("role") == "leader" and node_id in nodes
    ]
    if claims:
        return nodes[max(claims)[1]]
    hints = [
        (_term(status), hint)
        for status in statuses.values()
        if isinstance(hint := status.get("leader"), str)
        and hint in nodes
        and hint not in distrusted
    ]
    if hints:
        return nodes[max(hints)[1]]
    return None


def log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class EngineClient:
    """Thread-safe; one instance serves all request threads of the gateway."""

    def __init__(
        self,
        nodes: tuple[EngineNode, ...],
        settings: EngineClientSettings | None = None,
        log_line: Callable[[str], None] = log_to_stderr,
    ) -> None:
        if not nodes:
            raise ValueError("at least one engine node is needed")
        self._nodes = {node.node_id: node for node in nodes}
        self._settings = settings or EngineClientSettings()
        self._log_line = log_line
        self._pool = ConnectionPool(
            self._settings.connect_timeout_s,
            self._settings.read_timeout_s,
            self._settings.max_idle_connections_per_node,
        )
        # Status polls on keep-alive connections of their own: a new connection per poll cost
        # the gateway 13% of its CPU under load (profiled), and the polls never wait behind
        # a command's exchange. Each poll sets its own timeout on the socket.
        self._status_pool = ConnectionPool(
            self._settings.status_timeout_s,
            self._settings.status_timeout_s,
            max_idle_per_address=2,
        )
        self._command_batches: CommandBatches[EngineNode, _Attempt] = CommandBatches(
            self._send_batch,
            on_crash=_SentWithoutAnswer,
            on_closed=_NotSent("the gateway is shutting down"),
            senders_per_node=self._settings.batch_senders_per_node,
            max_commands=self._settings.batch_max_commands,
        )
        self._state_lock = threading.Lock()
        self._leader: EngineNode | None = None
        # Bumped on every leader decision, so threads that failed together rediscover once.
        self._generation = 0
        self._discovery_lock = threading.Lock()
        # Node id -> when it last took a command and gave no answer (see choose_leader).
        self._no_answer_at: dict[str, float] = {}
        self._status_executor = ThreadPoolExecutor(
            max_workers=len(nodes), thread_name_prefix="engine-status"
        )
        self._closed = threading.Event()
        # Requests waiting on an engine's answer, by node id, so that they can be let go when
        # the watch sees that node replaced (see _abandon_requests_to).
        self._in_flight: dict[str, set[http.client.HTTPConnection]] = {}
        self._in_flight_lock = threading.Lock()
        if self._settings.leader_watch_s > 0:
            threading.Thread(target=self._watch_leader, name="leader-watch", daemon=True).start()

    def known_leader(self) -> EngineNode | None:
        with self._state_lock:
            return self._leader

    def discover_leader(self) -> EngineNode | None:
        with self._state_lock:
            generation = self._generation
        return self._rediscover(generation)[0]

    def send_command(self, command: Mapping[str, object]) -> EngineReply:
        """POST /commands. Raises EngineUnavailableError (unsent) or OutcomeUnknownError."""
        body = json.dumps(command, separators=(",", ":")).encode()
        deadline = time.monotonic() + self._settings.retry_budget_s

        def attempt(node: EngineNode) -> _Attempt:
            not_sent = _NotSent(f"no connection to engine {node} came free within the budget")
            return self._command_batches.attempt(node, body, deadline, not_sent)

        return self._exchange(attempt, resend_after_sent=False, deadline=deadline)

    def read(self, path: str) -> EngineReply:
        """GET `path` on the leader. Raises EngineUnavailableError."""
        return self._exchange(
            partial(self._attempt, method="GET", path=path, body=None), resend_after_sent=True
        )

    def close(self) -> None:
        self._closed.set()
        self._command_batches.close()
        self._status_executor.shutdown(wait=False, cancel_futures=True)
        self._pool.close_all()
        self._status_pool.close_all()

    def _exchange(
        self,
        attempt: Callable[[EngineNode], _Attempt],
        resend_after_sent: bool,
        deadline: float | None = None,
    ) -> EngineReply:
        if deadline is None:
            deadline = time.monotonic() + self._settings.retry_budget_s
        with self._state_lock:
            leader, generation = self._leader, self._generation
        if leader is None:
            leader, generation = self._rediscover(generation)
        problem = "no engine reported a leader"
        while True:
            hint: object = None
            if leader is not None:
                outcome = attempt(leader)
                if isinstance(outcome, EngineReply):
                    if outcome.http_status != HTTPStatus.MISDIRECTED_REQUEST:
                        return outcome
                    hint = outcome.body.get("leader")
                    problem = f"{leader.node_id} answered not_leader (leader hint {hint})"
                elif isinstance(outcome, _SentWithoutAnswer) and not resend_after_sent:
                    # This order's outcome stays unknown, but the next one should not go to a
                    # leader that just failed to answer (through a proxy, a dead node looks
                    # like this: the proxy takes the request, then drops it).
                    self._forget_leader(leader)
                    raise OutcomeUnknownError(outcome.problem)
                else:
                    problem = outcome.problem
            if time.monotonic() >= deadline:
                raise EngineUnavailableError(problem)
            failed = leader
            leader, generation = self._next_leader(failed, hint, generation)
            if leader is None or leader == failed:
                time.sleep(self._settings.retry_pause_s)

    def _attempt(self, node: EngineNode, method: str, path: str, body: bytes | None) -> _Attempt:
        try:
            connection = self._pool.acquire(node.address)
        except OSError as error:
            return _NotSent(f"cannot connect to engine {node}: {_describe(error)}")
        try:
            connection.request(method, path, body=body, headers=JSON_HEADERS if body else {})
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            return _NotSent(
                f"engine {node} dropped the connection while sending: {_describe(error)}"
            )
        with self._in_flight_lock:
            self._in_flight.setdefault(node.node_id, set()).add(connection)
        try:
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            return _SentWithoutAnswer(
                f"engine {node} took the request, no answer: {_describe(error)}"
            )
        finally:
            with self._in_flight_lock:
                self._in_flight[node.node_id].discard(connection)
        if response.will_close:
            connection.close()
        else:
            self._pool.release(node.address, connection)
        return EngineReply(response.status, _json_object(payload), node.node_id)

    def _send_batch(self, node: EngineNode, bodies: Sequence[bytes]) -> list[_Attempt]:
        """One POST /commands with a list: one outcome per command, in order."""
        exchange = self._attempt(node, "POST", "/commands", b"[" + b",".join(bodies) + b"]")
        if not isinstance(exchange, EngineReply) or exchange.http_status != HTTPStatus.OK:
            # Unsent, unanswered, or answered as a whole (421: nothing of it was proposed).
            return [exchange] * len(bodies)
        items = exchange.body.get("outcomes")
        if not isinstance(items, list) or len(items) != len(bodies):
            unreadable = _SentWithoutAnswer(
                f"engine {node} answered a batch of {len(bodies)} commands without one outcome "
                "for each"
            )
            return [unreadable] * len(bodies)
        return [_item_reply(item, node) for item in items]

    def _next_leader(
        self, failed: EngineNode | None, hint: object, generation: int
    ) -> tuple[EngineNode | None, int]:
        hinted = self._nodes.get(hint) if isinstance(hint, str) else None
        if hinted is not None and hinted != failed:
            with self._state_lock:
                self._adopt_leader(hinted, cause="redirect")
                return self._leader, self._generation
        return self._rediscover(generation)

    def _rediscover(self, seen_generation: int) -> tuple[EngineNode | None, int]:
        with self._discovery_lock:
            with self._state_lock:
                if self._generation != seen_generation:
                    # Another thread decided while this one waited; its answer is fresher.
                    return self._leader, self._generation
            leader = choose_leader(self._poll_statuses(), self._nodes, self._distrusted())
            with self._state_lock:
                self._adopt_leader(leader, cause="discovery")
                return self._leader, self._generation

    def _distrusted(self) -> frozenset[str]:
        now = time.monotonic()
        with self._state_lock:
            return frozenset(
                node for node, at in self._no_answer_at.items() if now - at < DISTRUST_HINTS_S
            )

    def _forget_leader(self, failed: EngineNode) -> None:
        with self._state_lock:
            self._no_answer_at[failed.node_id] = time.monotonic()
            if self._leader == failed:
                self._adopt_leader(None, cause="no answer")

    def _watch_leader(self) -> None:
        """Follows elections the request path cannot see: adopts a node that claims leadership
        in a newer term than the current leader's. Never adopts "no leader": when nobody
        answers, the request path's own failures decide."""
        while not self._closed.wait(self._settings.leader_watch_s):
            try:
                # A short timeout: a paused leader must not hold the watch up for long.
                statuses = self._poll_statuses(
                    min(WATCH_STATUS_TIMEOUT_S, self._settings.status_timeout_s)
                )
            except (RuntimeError, CancelledError):
                # The executor was shut down, or its queued polls cancelled: the client is
                # closing (a cancelled poll's result() raises CancelledError, not RuntimeError).
                return
            elected = choose_leader(statuses, self._nodes, self._distrusted())
            with self._state_lock:
                current = self._leader
                if elected is None or elected == current:
                    continue
                current_term = _term(statuses.get(current.node_id, {})) if current else -1
                if _term(statuses.get(elected.node_id, {})) > current_term:
                    self._adopt_leader(elected, cause="watch")
                    if current is not None:
                        self._abandon_requests_to(current)

    def _abandon_requests_to(self, replaced: EngineNode) -> None:
        """A leader replaced in a newer term answers its pending requests late or never (a
        paused node holds them until the read timeout): let them go now, as outcome unknown,
        which is what they are (the entry may or may not survive the new leader). Their
        clients learn it at once instead of seconds later, and can go on."""
        with self._in_flight_lock:
            pending = list(self._in_flight.get(replaced.node_id, ()))
        for connection in pending:
            if connection.sock is not None:
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)

    def _adopt_leader(self, leader: EngineNode | None, cause: str) -> None:
        """Called with the state lock held."""
        previous = self._leader
        self._leader = leader
        self._generation += 1
        if previous is not None and leader != previous:
            # Commands still queued for the old leader were never sent: their callers send
            # them to the new one instead of waiting behind a node that stopped leading.
            self._command_batches.withdraw(previous, _NotSent(f"{previous} stopped leading"))
        if leader != previous:
            self._log_line(
                f"LEADER gateway leader={leader.node_id if leader else 'none'} "
                f"previous={previous.node_id if previous else 'none'} cause={cause} "
                f"mono_ns={time.monotonic_ns()} wall_ns={time.time_ns()}"
            )

    def _poll_statuses(self, timeout_s: float | None = None) -> dict[str, dict[str, object]]:
        # In parallel: a partitioned node costs one timeout, not one per node.
        timeout = self._settings.status_timeout_s if timeout_s is None else timeout_s
        futures = {
            node_id: self._status_executor.submit(self._fetch_status, node, timeout)
            for node_id, node in self._nodes.items()
        }
        statuses: dict[str, dict[str, object]] = {}
        for node_id, future in futures.items():
            status = future.result()
            if status is not None:
                statuses[node_id] = status
        return statuses

    def _fetch_status(self, node: EngineNode, timeout_s: float) -> dict[str, object] | None:
        try:
            connection = self._status_pool.acquire(node.address)
        except OSError:
            return None
        try:
            assert connection.sock is not None
            connection.sock.settimeout(timeout_s)
            connection.request("GET", "/status")
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()  # a broken or timed-out exchange: never reused
            return None
        if response.will_close:
            connection.close()
        else:
            self._status_pool.release(node.address, connection)
        return _json_object(payload) if response.status == HTTPStatus.OK else None


def _item_reply(item: object, node: EngineNode) -> _Attempt:
    if not isinstance(item, dict):
        return _SentWithoutAnswer(f"engine {node} answered a command with {item!r}")
    # An outcome this client does not know is a server error: the command may have executed.
    outcome = item.get("outcome")
    status = (
        _ITEM_STATUS.get(outcome, HTTPStatus.BAD_GATEWAY)
        if isinstance(outcome, str)
        else HTTPStatus.BAD_GATEWAY
    )
    return EngineReply(status, item, node.node_id)


def _term(status: Mapping[str, object]) -> int:
    term = status.get("term")
    return term if isinstance(term, int) and not isinstance(term, bool) else -1


def _json_object(payload: bytes) -> dict[str, object]:
    try:
        decoded = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"unparsed": payload[:200].decode("utf-8", "replace")}
    return decoded if isinstance(decoded, dict) else {"unparsed": decoded}


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
