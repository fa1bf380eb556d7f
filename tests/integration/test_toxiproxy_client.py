"""The Toxiproxy client against the real server binary from `hftchaos setup`, on loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import BackendError
from harness.toolchain import locate_toolchain
from harness.toxiproxy import ProxyInfo, Toxic, ToxiproxyClient

pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"
LATENCY_MS = 150
SAMPLES = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    """A TCP server on loopback that sends back whatever it receives; yields its port."""
    listener = socket.create_server((LOOPBACK, 0))
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(4096):
                connection.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() would not
        listener.close()
        thread.join(timeout=5)


@pytest.fixture
def toxiproxy(tmp_path: Path) -> Iterator[ToxiproxyClient]:
    binary = locate_toolchain().toxiproxy_server
    port = free_port()
    log = (tmp_path / "toxiproxy.log").open("wb")
    server = subprocess.Popen(
        [str(binary), "-host", LOOPBACK, "-port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LOG_LEVEL": "info"},
    )
    try:
        client = ToxiproxyClient(f"http://{LOOPBACK}:{port}")
        client.wait_ready(10)
        yield client
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def round_trip_ms(address: str) -> float:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic_ns()
        connection.sendall(b"ping")
        received = b""
        while len(received) < 4:
            chunk = connection.recv(4)
            assert chunk, "connection closed before the echo came back"
            received += chunk
        elapsed_ms = (time.monotonic_ns() - started) / 1e6
    assert received == b"ping"
    return elapsed_ms


def assert_healed(listen: str) -> None:
    """The toxic is gone. While it is on, no round trip can take less than LATENCY_MS (it
    holds every reply that long, as the test shows first); the fastest of a few now does. The
    bound is the fault's own size, not a speed: a busy machine can delay one round trip by
    150 ms, hardly all of them."""
    fastest_ms = min(round_trip_ms(listen) for _ in range(SAMPLES))
    print(f"healed: fastest of {SAMPLES} round trips {fastest_ms:.2f} ms")
    assert fastest_ms < LATENCY_MS


def test_proxy_lifecycle_and_toxics(toxiproxy: ToxiproxyClient) -> None:
    assert toxiproxy.version() == "2.12.0"
    with echo_server() as echo_port:
        upstream = f"{LOOPBACK}:{echo_port}"
        listen = f"{LOOPBACK}:{free_port()}"
        created = toxiproxy.create_proxy("echo", listen, upstream)
        assert created == ProxyInfo("echo", listen, upstream, enabled=True)
        assert toxiproxy.proxies() == {"echo": created}

        baseline_ms = min(round_trip_ms(listen) for _ in range(SAMPLES))

        latency = Toxic("slow", "latency", "downstream", 1.0, {"latency": LATENCY_MS, "jitter": 0})
        toxiproxy.add_toxic("echo", latency)
        assert toxiproxy.toxics("echo") == {"slow": latency}
        delayed_ms = min(round_trip_ms(listen) for _ in range(SAMPLES))
        print(f"round trip: {baseline_ms:.2f} ms plain, {delayed_ms:.2f} ms with {LATENCY_MS} ms")
        assert delayed_ms >= LATENCY_MS

        toxiproxy.remove_toxic("echo", "slow")
        assert toxiproxy.toxics("echo") == {}
        assert_healed(listen)

        assert toxiproxy.set_enabled("echo", False).enabled is False
        with pytest.raises(ConnectionRefusedError):
            round_trip_ms(listen)

        toxiproxy.add_toxic("echo", latency)
        toxiproxy.reset()  # heals: enabled again, toxics gone
        assert toxiproxy.proxies()["echo"].enabled is True
        assert toxiproxy.toxics("echo") == {}
        assert_healed(listen)

        toxiproxy.delete_proxy("echo")
        assert toxiproxy.proxies() == {}
        with pytest.raises(ConnectionRefusedError):
            round_trip_ms(listen)


def test_errors_carry_the_servers_message(toxiproxy: ToxiproxyClient) -> None:
    listen = f"{LOOPBACK}:{free_port()}"
    toxiproxy.create_proxy("p", listen, f"{LOOPBACK}:1")
    with pytest.raises(BackendError, match=r"proxy already exists \(HTTP 409\)"):
        toxiproxy.create_proxy("p", f"{LOOPBACK}:0", f"{LOOPBACK}:1")
    with pytest.raises(BackendError, match=r"address already in use \(HTTP 500\)"):
        toxiproxy.create_proxy("q", listen, f"{LOOPBACK}:1")
    with pytest.raises(BackendError, match=r"invalid toxic type \(HTTP 400\)"):
        toxiproxy.add_toxic("p", Toxic("x", "no-such-toxic"))
    with pytest.raises(BackendError, match=r"toxic not found \(HTTP 404\)"):
        toxiproxy.remove_toxic("p", "x")
    with pytest.raises(BackendError, match=r"proxy not found \(HTTP 404\)"):
        toxiproxy.delete_proxy("missing")


def test_an_unreachable_api_is_a_backend_error() -> None:
    client = ToxiproxyClient(f"{LOOPBACK}:{free_port()}", timeout_s=1)
    with pytest.raises(BackendError, match="unreachable"):
        client.version()


def test_why_not_the_pypi_package_it_loses_the_servers_error(
    toxiproxy: ToxiproxyClient,
) -> None:
    """toxiproxy-python 0.1.x against Toxiproxy 2.12: a proxy on a listen address already in
    use gets HTTP 500 "address already in use" from the server, which the package turns into
    a bare KeyError('name'), and the server address lives in a class attribute shared by every
    client in the process. If this test starts failing, the package changed: reconsider it."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    host, _, port = toxiproxy.api.removeprefix("http://").rpartition(":")
    package = Toxiproxy()
    package.update_api_consumer(host, int(port))
    assert (APIConsumer.host, APIConsumer.port) == (host, int(port))  # class-wide, not per client
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        busy = f"{LOOPBACK}:{taken.getsockname()[1]}"
        with pytest.raises(KeyError, match="name"):
            package.create(upstream=f"{LOOPBACK}:1", name="busy", listen=busy)
        with pytest.raises(BackendError, match=r"address already in use \(HTTP 500\)"):
            toxiproxy.create_proxy("busy", busy, f"{LOOPBACK}:1")
