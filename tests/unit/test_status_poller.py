"""The probe's one-thread poller against real loopback servers, and the answer parser it shares
with the blocking client."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from harness.status_client import KeepAliveRequest, StatusHttpError, parse_response
from harness.status_poller import PollTarget, StatusPoller
from tests.unit.test_status_client import raw_server, sized

PERIOD_S = 0.01


def test_an_answer_is_complete_only_once_its_whole_body_is_there() -> None:
    whole = sized(b'{"role":"leader"}')
    assert parse_response(whole[:20]) is None
    assert parse_response(whole[:-1]) is None
    response = parse_response(whole + b"HTTP/1.1 next")
    assert response is not None
    assert (response.status, response.body, response.consumed) == (
        200,
        b'{"role":"leader"}',
        len(whole),
    )
    assert not response.close


def test_chunked_and_close_delimited_answers_are_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n"
    )
    assert parse_response(chunked) is None  # the closing empty line is still to come
    trailed = parse_response(chunked + b"Trailer: 1\r\n\r\n")
    assert trailed is not None and trailed.body == b"abcde"
    plain = parse_response(chunked + b"\r\n")
    assert plain is not None and plain.body == b"abcde" and plain.consumed == len(chunked) + 2
    delimited = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial"
    assert parse_response(delimited) is None  # the body ends when the server closes
    ended = parse_response(delimited, at_eof=True)
    assert ended is not None and (ended.body, ended.close) == (b"partial", True)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # closed before the whole body
        b"HTTP/1.1 200",  # closed inside the head
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ],
)
def test_an_answer_cut_off_by_the_close_is_an_error(raw: bytes) -> None:
    with pytest.raises(StatusHttpError, match="mid-answer"):
        parse_response(raw, at_eof=True)


def test_a_malformed_answer_is_an_error() -> None:
    with pytest.raises(StatusHttpError, match="bad status line"):
        parse_response(b"SMTP ready\r\n\r\n")
    with pytest.raises(StatusHttpError, match="bad chunk size"):
        parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


class Answers:
    def __init__(self) -> None:
        self.by_node: dict[str, list[tuple[int, int, int | None, bytes | None]]] = {}
        self.lock = threading.Lock()

    def __call__(
        self, node: str, sent_ns: int, arrival_ns: int, code: int | None, body: bytes | None
    ) -> float:
        with self.lock:
            self.by_node.setdefault(node, []).append((sent_ns, arrival_ns, code, body))
        return PERIOD_S

    def of(self, node: str) -> list[tuple[int, int, int | None, bytes | None]]:
        with self.lock:
            return list(self.by_node.get(node, []))


def silent_server() -> socket.socket:
    """Accepts connections (the kernel does) and never reads or answers: a paused member."""
    return socket.create_server(("127.0.0.1", 0))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def target(url: str, timeout_s: float = 0.05) -> PollTarget:
    return PollTarget(KeepAliveRequest(url, timeout_s), timeout_s)


def poll_until(targets: dict[str, PollTarget], answers: Answers, node: str, count: int) -> None:
    """Polls until `node` has `count` answers (10 s at most), then stops the poller."""
    poller = StatusPoller(targets, answers)
    poller.start()
    deadline = time.monotonic() + 10
    while len(answers.of(node)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    poller.stop()


def test_a_silent_member_and_a_refusing_one_never_hold_up_a_healthy_one() -> None:
    answers = Answers()
    silent = silent_server()
    with raw_server(lambda n: sized(b'{"n":%d}' % n)) as (url, connections):
        targets = {
            "healthy": target(url),
            # Its first request is still waiting for its answer when the poller stops.
            "silent": target(f"http://127.0.0.1:{silent.getsockname()[1]}/status", 30.0),
            "refusing": target(f"http://127.0.0.1:{free_port()}/status"),
        }
        poll_until(targets, answers, "healthy", 10)
    silent.close()
    healthy = answers.of("healthy")
    assert len(healthy) >= 10
    assert answers.of("silent") == []
    assert all(code == 200 for _, _, code, _ in healthy)
    assert [body for _, _, _, body in healthy[:3]] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert connections == [1]  # one keep-alive connection carried them all
    refused = answers.of("refusing")
    assert refused and all(code is None for _, _, code, _ in refused)


def test_a_member_silent_past_its_timeout_is_no_answer_and_is_asked_again() -> None:
    answers = Answers()
    silent = silent_server()
    poll_until({"n1": target(f"http://127.0.0.1:{silent.getsockname()[1]}/s")}, answers, "n1", 3)
    silent.close()
    got = answers.of("n1")
    assert len(got) >= 3 and all(code is None for _, _, code, _ in got)
    # Given up no earlier than its 50 ms timeout after it was sent.
    assert all((arrival - sent) / 1e6 >= 50 for sent, arrival, _, _ in got)


def test_a_member_that_closes_after_each_answer_is_reconnected_and_a_4xx_is_passed_on() -> None:
    answers = Answers()
    closing = sized(b"{}", status="503 Service Unavailable").replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1
    )
    with raw_server(lambda _n: closing, close_after=1) as (url, connections):
        poll_until({"n1": target(url, timeout_s=0.5)}, answers, "n1", 5)
    got = answers.of("n1")
    assert len(got) >= 5
    assert all(code == 503 and body == b"{}" for _, _, code, body in got)
    assert len(connections) >= len(got) - 1  # a new connection for (nearly) every poll


def test_a_malformed_answer_is_no_answer_and_the_connection_is_dropped() -> None:
    answers = Answers()
    with raw_server(lambda _n: b"SMTP ready\r\n\r\n") as (url, connections):
        poll_until({"n1": target(url, timeout_s=0.5)}, answers, "n1", 3)
    got = answers.of("n1")
    assert got and all(code is None for _, _, code, _ in got)
    assert len(connections) >= len(got) - 1
