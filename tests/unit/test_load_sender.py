"""The load worker's pieces that need no process: reading a reply head, what the order
traffic sends and remembers, and the clock mapping of a worker on another machine."""

from __future__ import annotations

import json

import pytest

from harness.load.http_post import ReplyError, parse_head
from harness.load.traffic import OrderTraffic, OrderTrafficOptions
from harness.records import Outcome

OPTIONS = OrderTrafficOptions(("ACME",), 4, 100.0, cancel_ratio=0.5, seed=3, id_prefix="run")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12", (200, 12, False)),
        (b"HTTP/1.1 422 Unprocessable\r\ncontent-length:3\r\nConnection: close", (422, 3, True)),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0", (200, 0, True)),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive", (200, 0, False)),
    ],
)
def test_reply_heads_are_read(head: bytes, expected: tuple[int, int, bool]) -> None:
    assert parse_head(head) == expected


@pytest.mark.parametrize(
    ("head", "complaint"),
    [
        (b"SSH-2.0-OpenSSH", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", "chunked"),
        (b"HTTP/1.1 200 OK", "without Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1", "bad Content-Length"),
    ],
)
def test_replies_it_cannot_read_are_errors_not_guesses(head: bytes, complaint: str) -> None:
    with pytest.raises(ReplyError, match=complaint):
        parse_head(head)


def acked(status: str = "new", executions: int = 0) -> bytes:
    return json.dumps({"order": {"status": status}, "executions": [{}] * executions}).encode()


def test_order_traffic_cancels_only_its_own_resting_orders() -> None:
    traffic = OrderTraffic(OPTIONS)
    first = traffic.next_request(sender=1)
    assert first.kind == "new" and first.request_id == "run-1-1"  # nothing to cancel yet
    assert json.loads(first.body)["client_order_id"] == "run-1-1"
    assert traffic.reply(1, first, 200, acked("new")).outcome is Outcome.ACKED  # it rests
    sent: dict[int, list[str]] = {1: [], 2: []}
    for _ in range(40):
        for sender in (1, 2):
            request = traffic.next_request(sender)
            sent[sender].append(f"{request.kind} {request.path}")
            meaning = traffic.reply(sender, request, 200, acked("filled", executions=2))
            assert meaning.fills == 2
    # Sender 1 cancels the one order that rested, once; sender 2 never had one to cancel.
    assert [path for path in sent[1] if path.startswith("cancel")] == [
        "cancel /orders/run-1-1/cancel"
    ]
    assert all(path == "new /orders" for path in sent[2])


def test_replies_without_an_answer_or_with_a_refusal_keep_their_reason() -> None:
    traffic = OrderTraffic(OPTIONS)
    request = traffic.next_request(sender=1)
    lost = traffic.reply(1, request, None, b"TimeoutError: timed out")
    assert lost.outcome is Outcome.UNKNOWN and lost.reason == "TimeoutError: timed out"
    refused = traffic.reply(1, request, 422, b'{"reason": "price band"}')
    assert refused.outcome is Outcome.REJECTED and refused.reason == "price band"
    assert traffic.reply(1, request, 503, b"<html>").outcome is Outcome.ERROR


def test_the_same_seed_draws_the_same_requests() -> None:
    def draws(seed: int) -> list[bytes]:
        traffic = OrderTraffic(OrderTrafficOptions(("A", "B"), 4, 50.0, 0.0, seed, "p"))
        return [traffic.next_request(sender=1).body for _ in range(50)]

    assert draws(1) == draws(1) != draws(2)


def test_a_worker_on_the_same_machine_uses_the_masters_clock_unchanged() -> None:
    # Imported here: the worker module imports locust, which patches the standard library.
    import subprocess
    import sys

    program = (
        "from harness.load.worker import boot_id, clock_offset_ns;"
        "print(clock_offset_ns(boot_id(), 123), clock_offset_ns('another machine', 0) != 0)"
    )
    output = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert output == ["0", "True"]
