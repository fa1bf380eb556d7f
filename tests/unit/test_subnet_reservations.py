"""Subnet reservations for `network: namespaces`: two runs planned at once never share a /24."""

from __future__ import annotations

import ipaddress
import multiprocessing
import subprocess
from pathlib import Path

import pytest

from harness.backends.local.subnet_reservations import release, reservations_dir, reserve
from harness.errors import BackendError
from harness.faults.owned import own
from harness.topology.network import SUBNET_POOL, SUBNET_PREFIX

POOL = list(SUBNET_POOL.subnets(new_prefix=SUBNET_PREFIX))


@pytest.fixture(autouse=True)
def private_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFTCHAOS_RUN_REGISTRY", str(tmp_path / "registry"))


def test_every_reservation_gets_its_own_subnet_until_the_pool_is_gone() -> None:
    chosen = [reserve([]) for _ in POOL]
    assert sorted(chosen) == POOL, "a subnet was handed out twice"
    with pytest.raises(BackendError, match="in use here or reserved"):
        reserve([])


def test_the_machines_own_networks_are_never_chosen() -> None:
    in_use = [ipaddress.IPv4Network("10.231.0.0/17")]  # the pool's lower half
    assert all(not reserve(in_use).overlaps(in_use[0]) for _ in range(64))


def test_a_released_subnet_can_be_chosen_again() -> None:
    everything_but_one = POOL[1:]
    assert reserve(everything_but_one) == POOL[0]
    with pytest.raises(BackendError):
        reserve(everything_but_one)
    release(str(POOL[0]))
    assert reserve(everything_but_one) == POOL[0]


def test_a_reservation_of_a_dead_harness_frees_itself() -> None:
    dead = subprocess.Popen(["sleep", "30"])
    recorded = own("(harness)", dead.pid)
    dead.kill()
    dead.wait()
    reservations_dir().mkdir(parents=True)
    (reservations_dir() / str(POOL[0].network_address)).write_text(recorded.model_dump_json())
    assert reserve(POOL[1:]) == POOL[0]


def _reserve_and_hold(count: int, chosen: multiprocessing.Queue[str], done: object) -> None:
    for _ in range(count):
        chosen.put(str(reserve([])))
    done.wait(30)  # type: ignore[attr-defined]  # alive, so its reservations hold


def test_harnesses_reserving_at_once_in_separate_processes_never_share_a_subnet() -> None:
    """240 of the 256 subnets in four processes at once: by chance alone, some would be
    chosen twice."""
    context = multiprocessing.get_context("fork")
    chosen: multiprocessing.Queue[str] = context.Queue()
    done = context.Event()
    workers = [context.Process(target=_reserve_and_hold, args=(60, chosen, done)) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        subnets = [chosen.get(timeout=30) for _ in range(240)]
    finally:
        done.set()
        for worker in workers:
            worker.join(10)
    assert len(set(subnets)) == 240, "two processes were given the same subnet"
