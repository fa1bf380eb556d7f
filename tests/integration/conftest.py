from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator

import psutil
import pytest

from harness.backends.local import LocalBackend
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan


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


@pytest.fixture(scope="session", autouse=True)
def _results_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Scenario runs made by tests write their results away from the repository's results/."""
    os.environ["HFTCHAOS_RESULTS"] = str(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def shared_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """One reference topology for every scenario test that can share it (each scenario heals
    its faults, and tests check that it did). No clock control here: preloading libfaketime
    costs the preloaded process, so clock tests bring up their own topology."""
    plan = make_plan(
        load_topology(REFERENCE_TOPOLOGY),
        tmp_path_factory.mktemp("shared-topology"),
        locate_toolchain(),
    )
    with LocalBackend(plan) as backend:
        backend.up()
        yield backend
