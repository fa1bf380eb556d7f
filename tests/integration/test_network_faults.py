"""Kernel network faults with real iptables rules on loopback addresses 127.0.0.31 and .32.

Every test tags its rules with a run id of its own and sweeps that run in a finally block, so
nothing is left behind even when an assertion fails; rules of other runs are never touched.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.local.network import inject_packet_loss, inject_partition
from harness.faults import netfilter
from tests.integration.netfilter_run import netfilter_run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="iptables rules need root"),
]

HOST_A = "127.0.0.31"
HOST_B = "127.0.0.32"
CONNECT_TIMEOUT_S = 1.0
HANG_S = 6 * netfilter.COMMAND_TIMEOUT_S  # a sweep runs at most ~6 iptables commands
_run_numbers = itertools.count()


@pytest.fixture
def run_id(tmp_path: Path) -> Iterator[str]:
    with netfilter_run(tmp_path, f"test{os.getpid()}n{next(_run_numbers)}") as run:
        yield run
    if not netfilter.list_rules():  # no other run active: the chain must be gone too
        assert netfilter.CHAIN not in netfilter._read_table().chains


class EchoServer:
    """Accepts TCP connections on `host` and echoes one message on each."""

    def __init__(self, host: str) -> None:
        self.listener = socket.create_server((host, 0), backlog=64)
        self.listener.settimeout(0.05)  # close() on Linux does not wake a blocked accept()
        self.address: tuple[str, int] = self.listener.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection, contextlib.suppress(OSError):
                connection.settimeout(CONNECT_TIMEOUT_S)
                connection.sendall(connection.recv(64))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()


@pytest.fixture
def servers() -> Iterator[tuple[EchoServer, EchoServer]]:
    a, b = EchoServer(HOST_A), EchoServer(HOST_B)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def round_trip(source: str, server: EchoServer) -> str:
    """'ok', or what went wrong, for one connect + echo from `source` to the server."""
    with socket.socket() as client:
        client.settimeout(CONNECT_TIMEOUT_S)
        client.bind((source, 0))
        try:
            client.connect(server.address)
            client.sendall(b"ping")
            return "ok" if client.recv(64) == b"ping" else "bad echo"
        except TimeoutError:
            return "timeout"
        except OSError as error:
            return f"error {error.errno}"


def test_partition_cuts_both_directions_but_not_the_harness_and_heals(
    run_id: str, servers: tuple[EchoServer, EchoServer]
) -> None:
    server_a, server_b = servers
    assert round_trip(HOST_A, server_b) == "ok"
    assert round_trip(HOST_B, server_a) == "ok"

    fault = inject_partition(run_id, 1, [[("a", HOST_A)], [("b", HOST_B)]])
    assert len(netfilter.list_rules(run_id)) == 2
    assert fault.detail["rules"] == [
        f"-A HFTCHAOS -s {HOST_A}/32 -d {HOST_B}/32 -i lo -m comment"
        f" --comment hftchaos:{run_id}:1 -j DROP",
        f"-A HFTCHAOS -s {HOST_B}/32 -d {HOST_A}/32 -i lo -m comment"
        f" --comment hftchaos:{run_id}:1 -j DROP",
    ]
    assert round_trip(HOST_A, server_b) == "timeout"
    assert round_trip(HOST_B, server_a) == "timeout"
    assert round_trip("127.0.0.1", server_a) == "ok"
    assert round_trip("127.0.0.1", server_b) == "ok"
    # Dropped on arrival (INPUT), so the sender sees a silent loss, not EPERM.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind((HOST_A, 0))
        assert sender.sendto(b"x", server_b.address) == 1

    fault.heal()
    fault.heal()
    assert netfilter.list_rules(run_id) == []
    assert round_trip(HOST_A, server_b) == "ok"
    assert round_trip(HOST_B, server_a) == "ok"


def datagrams_received(host: str, count: int) -> int:
    """Send `count` numbered datagrams from 127.0.0.1 to `host`; how many arrived."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind((host, 0))
        receiver.settimeout(0.2)
        sender.bind(("127.0.0.1", 0))
        received: set[int] = set()
        batch = 50  # drained between batches, so the receive buffer never overflows
        for start in range(0, count, batch):
            end = min(start + batch, count)
            for number in range(start, end):
                sender.sendto(number.to_bytes(4, "big"), receiver.getsockname())
            while len(received) < end:
                try:
                    received.add(int.from_bytes(receiver.recv(16), "big"))
                except TimeoutError:
                    break
        return len(received)


def test_half_packet_loss_drops_about_half_and_heals(run_id: str) -> None:
    sent = 400
    assert datagrams_received(HOST_A, sent) == sent

    fault = inject_packet_loss(run_id, 2, "a", HOST_A, 50)
    assert len(netfilter.list_rules(run_id)) == 2
    lossy = datagrams_received(HOST_A, sent)
    print(f"50% loss on {HOST_A}: {lossy} of {sent} datagrams arrived")
    # Binomial(400, 0.5): mean 200, sd 10; 80..320 is 12 sd out, so this cannot flake.
    assert 0.2 * sent <= lossy <= 0.8 * sent, lossy

    fault.heal()
    assert netfilter.list_rules(run_id) == []
    assert datagrams_received(HOST_A, sent) == sent


CRASHING_PROCESS = """
import os, sys
from harness.faults import netfilter
netfilter.drop_between(sys.argv[1], 3, ["127.0.0.31"], ["127.0.0.32"])
held = netfilter._locked()
held.__enter__()  # dies holding the harness's lock on the chain, too
os._exit(0)  # a crash: no heal, no sweep, no unlock
"""


def test_sweep_removes_rules_a_crashed_process_left(
    run_id: str, servers: tuple[EchoServer, EchoServer]
) -> None:
    _, server_b = servers
    subprocess.run([sys.executable, "-c", CRASHING_PROCESS, run_id], check=True, timeout=30)
    assert len(netfilter.list_rules(run_id)) == 2
    assert round_trip(HOST_A, server_b) == "timeout"

    # The kernel drops a dead process's flock, so the sweep does not wait for it. Run aside,
    # so that a sweep stuck on the lock fails here rather than at pytest's timeout; the bound
    # only tells stuck from done: each of its few iptables commands gives up after
    # COMMAND_TIMEOUT_S, a blocked flock never does.
    outcome: list[int | Exception] = []

    def sweep() -> None:
        try:
            outcome.append(netfilter.sweep(run_id))
        except Exception as error:
            outcome.append(error)

    sweeping = threading.Thread(target=sweep, daemon=True)
    sweeping.start()
    sweeping.join(timeout=HANG_S)
    assert outcome, f"the sweep is stuck after {HANG_S:.0f} s (on the crashed process's lock?)"
    assert outcome == [2]
    assert netfilter.list_rules(run_id) == []
    assert netfilter.sweep(run_id) == 0
    assert round_trip(HOST_A, server_b) == "ok"
