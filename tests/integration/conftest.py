from __future__ import annotations

import os
import socket
from collections.abc import Iterable

import psutil
import pytest

from harness.toolchain import locate_toolchain


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _toolchain_present() -> None:
    """Integration tests run real components: `hftchaos setup` must have provisioned them."""
    locate_toolchain()


def processes_of_services(pids: Iterable[int]) -> list[str]:
    """Which of these pids still exist (zombies included) as a service process."""
    alive = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE or process.ppid() == os.getpid():
                alive.append(f"{pid} {process.name()} {process.status()}")
        except psutil.NoSuchProcess:
            continue
    return alive


def bound_ports(ports: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (host, port) pairs that something still listens on."""
    taken = []
    for host, port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                taken.append((host, port))
    return taken
