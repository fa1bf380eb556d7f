"""Machine-wide reservations of the /24s that `network: namespaces` runs use.

A subnet is chosen when the run is planned and made when the topology comes up, seconds
later; until its bridge has the address, `ip addr` cannot show that it is taken, so two runs
planned at once could choose the same one. Each choice is therefore written down, under an
exclusive lock, as a file naming the subnet and holding its owner (an OwnedProcess). A
reservation lasts while its owner lives (or until it is released), so one left by a killed
harness frees itself: nothing needs healing.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness import settings
from harness.errors import BackendError, RuntimeEnvironmentError
from harness.faults.owned import OwnedProcess, alive, own
from harness.store.atomic import write_text_atomically
from harness.topology.network import free_subnets

LOCK_FILE = ".lock"


def reservations_dir() -> Path:
    """Beside the run registry, so a test's private registry gets private reservations."""
    return Path(settings.RUN_REGISTRY.value()).parent / "hftchaos-subnets"


def _file(subnet: ipaddress.IPv4Network) -> Path:
    return reservations_dir() / str(subnet.network_address)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    directory = reservations_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = (directory / LOCK_FILE).open("a")
    except OSError as error:
        raise RuntimeEnvironmentError(
            f"cannot reserve a subnet in {directory} ({error.strerror or error}); set "
            "HFTCHAOS_RUN_REGISTRY to a writable folder (its parent holds the reservations)"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by close, or by the kernel on death
        yield


def _owner(path: Path) -> OwnedProcess | None:
    """The process that wrote the reservation; None when it cannot be read."""
    try:
        return OwnedProcess.model_validate_json(path.read_text())
    except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def reserved() -> set[ipaddress.IPv4Network]:
    """The subnets held by live owners (call under the lock)."""
    held = set()
    for path in reservations_dir().iterdir():
        if path.name == LOCK_FILE:
            continue
        try:
            subnet = ipaddress.IPv4Network(f"{path.name}/24")
        except ValueError:
            continue
        owner = _owner(path)
        if owner is not None and alive(owner):
            held.add(subnet)
        else:
            path.unlink(missing_ok=True)
    return held


def reserve(in_use: Sequence[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A /24 that overlaps nothing in `in_use` (this machine's addresses and routes) and no
    live reservation, now reserved for this process; chosen at random, so that a stale view
    of the machine rarely matters."""
    with _locked():
        taken = reserved()
        free = [subnet for subnet in free_subnets(in_use) if subnet not in taken]
        if not free:
            raise BackendError(
                "network: namespaces: every /24 of 10.231.0.0/16 is in use here or reserved by "
                f"a running harness ({len(taken)} reservations in {reservations_dir()})"
            )
        subnet = random.SystemRandom().choice(free)
        write_text_atomically(_file(subnet), own("(harness)", os.getpid()).model_dump_json())
        return subnet


def release(subnet: str) -> None:
    """Give the subnet back once its network is removed (only this process's own)."""
    with _locked():
        path = _file(ipaddress.IPv4Network(subnet))
        owner = _owner(path)
        if owner is not None and owner.pid == os.getpid():
            path.unlink(missing_ok=True)
