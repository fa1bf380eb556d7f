"""Many members' HTTP status endpoints polled from one thread, over non-blocking sockets.

The leader probe polls every Raft member every few milliseconds. With one thread per member,
each poll was a thread wake-up of its own (a status read costs 23 us in a tight loop and
110-200 us when a member's thread wakes every 5 ms; benchmarks/harness_overhead.py). Here one
thread waits in `select` for whichever member answers or falls due next, and members due
together are asked together. Measured against the threads on one idle reference topology at
the same sample rate: about a quarter less CPU, not the half the wake-ups suggested; the rest
is per sample (the loopback exchange, parsing, recording).

No member can hold up another: connecting, sending and reading never block, and every
request has its member's own timeout. Each member has at most one request in flight on one
keep-alive connection; a failed or timed-out exchange closes it, and the next poll reconnects.
Answers are read by the same rules as the blocking client (`status_client.parse_response`).
"""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from harness.status_client import KeepAliveRequest, StatusHttpError, parse_response

# How long the loop sleeps at most, so that `stop` is noticed without a wake-up pipe.
_MAX_WAIT_S = 0.05
# Members due within this much of one that is due are asked with it, and keep that step: their
# answers then come back together and the thread wakes once per round, not once per member
# (left each on its own schedule they drift apart, and one thread woke as often as three had).
ALIGN_S = 0.002


@dataclass(frozen=True)
class PollTarget:
    request: KeepAliveRequest  # only its host, port and prebuilt bytes are used
    timeout_s: float


# (node, sent_ns, arrival_ns, HTTP status or None, body or None) -> seconds from this poll's
# due time to the next one's. None, None: no answer (refused, reset, timed out, malformed).
OnAnswer = Callable[[str, int, int, int | None, bytes | None], float]


@dataclass
class _Member:
    node: str
    target: PollTarget
    next_due: float
    sock: socket.socket | None = None
    connecting: bool = False
    unsent: bytes = b""
    buffer: bytes = b""
    sent_ns: int | None = None  # set while a request is in flight
    deadline: float = 0.0
    events: int = field(default=0)


class StatusPoller:
    """Polls every target until `stop`; `on_answer` runs on the poller's thread."""

    def __init__(
        self, targets: Mapping[str, PollTarget], on_answer: OnAnswer, name: str = "probe-http"
    ) -> None:
        now = time.monotonic()
        self._members = [_Member(node, target, now) for node, target in targets.items()]
        self._on_answer = on_answer
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._start_due_and_expire_late(time.monotonic())
                for key, mask in self._selector.select(self._wait_s()):
                    self._on_ready(key.data, mask)
        finally:
            for member in self._members:
                self._close(member)
            self._selector.close()

    def _wait_s(self) -> float:
        moments = [m.deadline if m.sent_ns is not None else m.next_due for m in self._members]
        if not moments:
            return _MAX_WAIT_S
        return min(_MAX_WAIT_S, max(0.0, min(moments) - time.monotonic()))

    def _start_due_and_expire_late(self, now: float) -> None:
        idle = [member for member in self._members if member.sent_ns is None]
        if any(member.next_due <= now for member in idle):
            for member in idle:
                if member.next_due <= now + ALIGN_S:
                    # From now on in step with the members it was asked with.
                    member.next_due = min(member.next_due, now)
                    self._send(member)
        for member in self._members:
            if member.sent_ns is not None and member.deadline <= now:
                self._fail(member)

    def _send(self, member: _Member) -> None:
        member.sent_ns = time.monotonic_ns()
        member.deadline = time.monotonic() + member.target.timeout_s
        member.buffer = b""
        member.unsent = member.target.request.request
        if member.sock is None and not self._connect(member):
            self._fail(member)
            return
        if not member.connecting:
            self._write(member)

    def _connect(self, member: _Member) -> bool:
        request = member.target.request
        try:
            # Resolved on every connect: a container's address may change when it restarts.
            family, kind, proto, _, address = socket.getaddrinfo(
                request.host, request.port, type=socket.SOCK_STREAM
            )[0]
            sock = socket.socket(family, kind, proto)
        except OSError:
            return False
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return False
        member.sock, member.connecting = sock, code != 0
        self._watch(member, selectors.EVENT_WRITE if member.connecting else 0)
        return True

    def _on_ready(self, member: _Member, mask: int) -> None:
        if member.sock is None:
            return
        if member.sent_ns is None:
            # Readable while idle: the server closed the keep-alive connection (or sent what
            # nobody asked for). The next poll connects again.
            self._close(member)
            return
        if mask & selectors.EVENT_WRITE:
            if member.connecting:
                member.connecting = False
                if member.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    self._fail(member)
                    return
            self._write(member)
        elif mask & selectors.EVENT_READ:
            self._read(member)

    def _write(self, member: _Member) -> None:
        assert member.sock is not None
        try:
            sent = member.sock.send(member.unsent)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail(member)
            return
        member.unsent = member.unsent[sent:]
        ready = selectors.EVENT_READ
        self._watch(member, ready | selectors.EVENT_WRITE if member.unsent else ready)

    def _read(self, member: _Member) -> None:
        assert member.sock is not None
        try:
            data = member.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._fail(member)
            return
        member.buffer += data
        try:
            response = parse_response(member.buffer, at_eof=not data)
        except StatusHttpError:
            self._fail(member)
            return
        if response is None:
            return
        if response.close or not data:
            self._close(member)
        self._answered(member, response.status, response.body)

    def _fail(self, member: _Member) -> None:
        self._close(member)
        self._answered(member, None, None)

    def _answered(self, member: _Member, status: int | None, body: bytes | None) -> None:
        assert member.sent_ns is not None
        sent_ns, member.sent_ns = member.sent_ns, None
        interval_s = self._on_answer(member.node, sent_ns, time.monotonic_ns(), status, body)
        # As the per-member threads did: the next poll is due one interval after this one was
        # due; a member that fell behind (slow to answer) is polled at once, never in a burst.
        member.next_due += interval_s
        now = time.monotonic()
        if member.next_due < now:
            member.next_due = now
        # An idle connection stays registered for reading (one registration per connection,
        # not per poll): readable while idle means the server closed it.

    def _watch(self, member: _Member, events: int) -> None:
        assert member.sock is not None
        if events == member.events:
            return
        if member.events == 0:
            self._selector.register(member.sock, events, member)
        elif events == 0:
            self._selector.unregister(member.sock)
        else:
            self._selector.modify(member.sock, events, member)
        member.events = events

    def _close(self, member: _Member) -> None:
        if member.sock is None:
            return
        if member.events:
            self._selector.unregister(member.sock)
            member.events = 0
        member.sock.close()
        member.sock, member.connecting = None, False
