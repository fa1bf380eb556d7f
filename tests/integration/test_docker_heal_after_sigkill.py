"""A harness SIGKILLed while a fault is in force on the Docker backend leaves nothing behind
once `hftchaos heal` has run: the machine equals its snapshot from before the run
(containers of runs and their states, networks of runs, the iptables rules of the host,
processes carrying a run marker, clock offset files), for kill, pause, packet loss,
partition and clock skew (the shape of tests/integration/test_heal_after_sigkill.py).

The harness's reaper (a detached watchdog that removes a dead harness's containers) is
SIGKILLed with it, so what the test sees healed is `hftchaos heal`'s doing: before the heal
the test sees the fault still in force by its own means (the container's state, the rules in
its network namespace, the offset file), or it would prove nothing. The reaper on its own is
tested in test_docker_backend.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.backends.docker.engine import engine_client
from harness.backends.docker.leftovers import HARNESS_PID_LABEL, RUN_LABEL, SERVICE_LABEL
from tests.integration.test_heal_after_sigkill import (
    _hftchaos,
    _iptables_rules,
    _journal,
    _marked_processes,
    _own_registry,  # noqa: F401 (autouse: imported, it applies here too)
    _scenario,
    _skewed_clocks,
)

# A Docker topology and a SIGKILLed harness per fault kind (about 70 s): `nox -s docker`; CI
# keeps the Docker reaper's own test (test_docker_backend.py) and every kind on the local backend.
pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.docker_long]

KINDS = ["kill", "pause", "packet_loss", "partition", "clock_skew"]
REAPER = "harness.backends.docker.reaper"


@pytest.fixture(scope="module")
def engine() -> Any:
    return engine_client()


# -- the machine, seen by the test's own means ----------------------------------------------


def _containers(engine: Any) -> dict[str, str]:
    found = engine.containers.list(all=True, ignore_removed=True, filters={"label": RUN_LABEL})
    return {container.name: container.status for container in found}


def _networks(engine: Any) -> list[str]:
    return sorted(network.name for network in engine.networks.list(filters={"label": RUN_LABEL}))


def _snapshot(engine: Any, results: Path) -> dict[str, object]:
    return {
        "containers": _containers(engine),
        "networks": _networks(engine),
        "iptables": _iptables_rules(),
        "processes": _marked_processes(results),
        "clocks": _skewed_clocks(results),
    }


def _harness_container(engine: Any, harness: int, service: str) -> Any | None:
    labels = [f"{HARNESS_PID_LABEL}={harness}", f"{SERVICE_LABEL}={service}"]
    found = engine.containers.list(all=True, ignore_removed=True, filters={"label": labels})
    return found[0] if found else None


def _namespace_rules(container: Any) -> list[str]:
    pid = str(container.attrs["State"]["Pid"])
    listing = subprocess.run(
        ["nsenter", "-t", pid, "-n", "iptables", "-S", "INPUT"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    return [line for line in listing.splitlines() if "hftchaos:" in line]


def _in_force(kind: str, engine: Any, harness: int, results: Path) -> bool:
    if not any(line["entry"] == "fault" for line in _journal(results)):
        return False
    n2 = _harness_container(engine, harness, "n2")
    if n2 is None:
        return False
    n2.reload()
    if kind == "kill":
        return bool(n2.status == "exited")
    if kind == "pause":
        return bool(n2.status == "paused")
    if kind in ("packet_loss", "partition"):
        return n2.status == "running" and bool(_namespace_rules(n2))
    assert kind == "clock_skew"
    return bool(_skewed_clocks(results))


def _wait_until(condition: Callable[[], bool], harness: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 180  # a first run may build the images
    while not condition():
        assert harness.poll() is None, f"the harness ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


def _reapers(harness: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if REAPER in command and command[-1:] == [str(harness)]:
            found.append(process)
    return found


def _kill_mid_fault(engine: Any, tmp_path: Path, kind: str) -> tuple[Path, dict[str, object]]:
    results = tmp_path / "results"
    results.mkdir()
    before = _snapshot(engine, results)
    environment = {**os.environ, "HFTCHAOS_RESULTS": str(results)}
    scenario = str(_scenario(tmp_path, kind, docker=True))
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--backend", "docker", scenario],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until(
            lambda: _in_force(kind, engine, harness.pid, results), harness, f"the {kind} in force"
        )
        reapers = _reapers(harness.pid)
        assert reapers, "no reaper watches the harness"
    finally:
        for reaper in _reapers(harness.pid):
            reaper.kill()
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
    time.sleep(1.5)  # a reaper that survived would have acted by now (it checks every second)
    assert _in_force(kind, engine, harness.pid, results), f"the {kind} went before the heal"
    return results, before


def _settled(engine: Any, results: Path, before: dict[str, object]) -> dict[str, object]:
    deadline = time.monotonic() + 15
    while (after := _snapshot(engine, results)) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    return after


@pytest.mark.parametrize("kind", KINDS)
def test_heal_after_sigkill_during_each_fault_kind_on_docker(
    engine: Any, tmp_path: Path, kind: str
) -> None:
    results, before = _kill_mid_fault(engine, tmp_path, kind)
    heal = _hftchaos(results, "heal")
    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert "healed run" in heal.stdout, heal.stdout
    assert "removed its containers and network (Docker)" in heal.stdout, heal.stdout
    assert _settled(engine, results, before) == before
    journal = _journal(results)
    assert journal[-1]["entry"] == "run_healed" and journal[-1]["errors"] == [], journal[-1]
    again = _hftchaos(results, "heal")
    assert again.returncode == 0 and "nothing to heal" in again.stdout, again.stdout
