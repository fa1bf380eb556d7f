"""The probe's keep-alive GET client against real loopback servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from harness.status_client import KeepAliveRequest, StatusHttpError

Answer = Callable[[int], bytes]  # request number on its connection -> raw answer bytes


@contextmanager
def raw_server(answer: Answer, close_after: int | None = None) -> Iterator[tuple[str, list[int]]]:
    """A server that reads each request head and writes `answer(n)`; counts connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            served = 0
            while close_after is None or served < close_after:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buffer += data
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                conn.sendall(answer(served))
                served += 1

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/status", connections
    finally:
        listener.close()


def sized(body: bytes, status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_reuses_one_connection_for_many_requests() -> None:
    with raw_server(lambda n: sized(b'{"n":%d}' % n)) as (url, connections):
        client = KeepAliveRequest(url, timeout_s=2)
        answers = [client.get() for _ in range(5)]
        client.close()
    assert answers == [(200, b'{"n":%d}' % n) for n in range(5)]
    assert len(connections) == 1


def test_reads_chunked_bodies_with_and_without_trailers() -> None:
    plain = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    )
    trailed = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"2;ext=1\r\n{}\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    with raw_server(lambda n: plain if n % 2 == 0 else trailed) as (url, connections):
        client = KeepAliveRequest(url, timeout_s=2)
        answers = [client.get() for _ in range(4)]
        client.close()
    assert answers == [(200, b'{"a":1}'), (200, b"{}")] * 2
    assert len(connections) == 1


def test_reads_a_close_delimited_body_then_reconnects() -> None:
    answer = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"ok":true}'
    with raw_server(lambda n: answer, close_after=1) as (url, connections):
        client = KeepAliveRequest(url, timeout_s=2)
        assert client.get() == (200, b'{"ok":true}')
        assert client.get() == (200, b'{"ok":true}')
        client.close()
    assert len(connections) == 2


def test_no_content_answers_have_no_body() -> None:
    with raw_server(lambda n: b"HTTP/1.1 204 No Content\r\n\r\n") as (url, connections):
        client = KeepAliveRequest(url, timeout_s=2)
        assert client.get() == (204, b"")
        assert client.get() == (204, b"")
        client.close()
    assert len(connections) == 1


def test_a_server_that_hung_up_fails_one_request_and_the_next_reconnects() -> None:
    with raw_server(lambda n: sized(b"{}"), close_after=1) as (url, connections):
        client = KeepAliveRequest(url, timeout_s=2)
        assert client.get() == (200, b"{}")
        with pytest.raises((OSError, StatusHttpError)):
            client.get()
        assert client.get() == (200, b"{}")
        client.close()
    assert len(connections) == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"SPDY/3 200 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "unusable Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    ],
)
def test_malformed_answers_raise_and_drop_the_connection(answer: bytes, message: str) -> None:
    with raw_server(lambda n: answer) as (url, _):
        client = KeepAliveRequest(url, timeout_s=2)
        with pytest.raises(StatusHttpError, match=message):
            client.get()
        assert client._socket is None


def test_a_silent_server_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = KeepAliveRequest(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout_s=0.2)
        with pytest.raises(TimeoutError):
            client.get()
    finally:
        listener.close()
