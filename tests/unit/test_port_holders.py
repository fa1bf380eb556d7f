"""A service that could not bind its port: the error names who holds it."""

from __future__ import annotations

import os
import socket

from harness.backends.port_holders import port_holders


def test_the_holder_of_a_listening_port_is_named() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        found = port_holders("127.0.0.1", [port])
    assert found == [f"127.0.0.1:{port} LISTEN pid {os.getpid()} ({_name()})"]
    assert port_holders("127.0.0.1", [port]) == []  # closed: nobody holds it


def _name() -> str:
    import psutil

    return psutil.Process().name()
