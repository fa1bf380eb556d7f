"""A service that could not bind its port: the error names who holds it."""

from __future__ import annotations

import os
import platform
import socket

import pytest

from harness.backends.port_holders import port_holders


def test_the_holder_of_a_listening_port_is_named() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        found = port_holders("127.0.0.1", [port])
    assert found == [f"127.0.0.1:{port} LISTEN pid {os.getpid()} ({_name()})"]
    assert port_holders("127.0.0.1", [port]) == []  # closed: nobody holds it


def _kernel() -> tuple[int, ...]:
    return tuple(int(part) for part in platform.release().split(".")[:2] if part.isdigit())


@pytest.mark.skipif(_kernel() < (6, 7), reason="Linux reports bound-only sockets from 6.7")
def test_the_holder_of_a_port_that_is_only_bound_is_named() -> None:
    """Such a socket is not in /proc/net/tcp, yet it blocks every other bind of its port; a
    plan's own port reservations are of this kind."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        found = port_holders("127.0.0.1", [port])
    assert found == [f"127.0.0.1:{port} BOUND (not listening) pid {os.getpid()} ({_name()})"]
    assert port_holders("127.0.0.1", [port]) == []


def _name() -> str:
    import psutil

    return psutil.Process().name()
