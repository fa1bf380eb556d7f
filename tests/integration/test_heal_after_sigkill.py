"""A harness SIGKILLed while a fault is in force leaves nothing behind once `hftchaos heal`
(or the next `hftchaos` command) has run: the machine equals its snapshot from before the
run (iptables rules, processes carrying a run marker and their states, clock offsets), for
every fault kind in the registry, on the local backend.

Each kind gets its own harness on a small topology (tests/integration/small_topology.py: up
in seconds), because a SIGKILLed harness takes its topology with it.
Before the SIGKILL the test sees the fault in force by its own means (the kernel's rules,
the offset file, the process state, the Toxiproxy API), or the test would prove nothing.
All twelve kinds take about a minute (about 4 s each, measured), so CI runs every one;
`nox -s heal` runs this file alone.

On the local backend most of what a fault leaves dies with the harness anyway: services and
Toxiproxy get a parent-death SIGKILL (stopped processes too), and toxics and disabled proxies
live in Toxiproxy. What outlives it is kernel rules (packet_loss, partition) and clock offset
files (clock_skew): with the heal's undo steps and rule sweeps turned into no-ops (a negative
control run by hand) those three cases and the next-command case fail; the other nine pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from harness.faults.registry import fault_kinds
from harness.run_marker import RUN_MARKER_VARIABLE
from tests.integration.small_topology import small_topology

# Each kind aimed at n2 (or its gateway link) a second into the load, for far longer than
# the test waits: the SIGKILL always lands while it is in force.
FAULTS: dict[str, str] = {
    "kill": "{type: kill, at_s: 1, target: n2, restart_after_s: 30}",
    "restart": "{type: restart, at_s: 1, target: n2}",
    "pause": "{type: pause, at_s: 1, duration_s: 30, target: n2}",
    "clock_skew": "{type: clock_skew, at_s: 1, duration_s: 30, target: n2, offset_ms: 5000}",
    "packet_loss": "{type: packet_loss, at_s: 1, duration_s: 30, target: n2, percent: 50}",
    "partition": "{type: partition, at_s: 1, duration_s: 30, isolate: n2}",
    "latency": "{type: latency, at_s: 1, duration_s: 30, link: gateway-n2, latency_ms: 300}",
    "bandwidth": "{type: bandwidth, at_s: 1, duration_s: 30, link: gateway-n2, rate_kb_per_s: 5}",
    "timeout": "{type: timeout, at_s: 1, duration_s: 30, link: gateway-n2, timeout_ms: 0}",
    "reset_peer": "{type: reset_peer, at_s: 1, duration_s: 30, link: gateway-n2}",
    "slicer": "{type: slicer, at_s: 1, duration_s: 30, link: gateway-n2, average_size: 64}",
    "link_down": "{type: link_down, at_s: 1, duration_s: 30, link: gateway-n2}",
}


@pytest.fixture(autouse=True)
def _own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness and the heal register runs here, not in the machine's registry: another
    session's `hftchaos` command would otherwise heal the dead run first (seen: `heal` said
    "nothing to heal" for bandwidth and kill while other work ran on the machine)."""
    monkeypatch.setenv("HFTCHAOS_RUN_REGISTRY", str(tmp_path / "registry"))


def test_every_kind_in_the_registry_has_a_case() -> None:
    assert set(fault_kinds()) == set(FAULTS), "a new fault kind needs its SIGKILL case here"


def _scenario(directory: Path, kind: str, docker: bool = False) -> Path:
    """The case's scenario; with `docker`, on the small topology's images (its Docker form)."""
    path = directory / f"heal-{kind}.yaml"
    prefix = "heal-docker" if docker else "heal"
    path.write_text(
        f"name: {prefix}-{kind.replace('_', '-')}\n"
        f"topology: {small_topology(directory, images=docker)}\n"
        "load: {rate_per_s: 20, duration_s: 40, warmup_s: 0}\n"
        "steady_state: {window_s: 1}\n"
        "checks: []\n"
        f"faults:\n  - {FAULTS[kind]}\n"
    )
    return path


# -- the machine, seen by the test's own means ----------------------------------------------


# Docker's own rules (its chains, its bridges) change whenever a container starts anywhere on
# the machine; no local fault touches them, and the Docker tests compare their own.
DOCKERS_OWN = ("DOCKER", "docker0", " br-")


def _iptables_rules() -> list[str]:
    """Every rule and chain of every table but Docker's own, without packet counters."""
    text = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [
        line.split(" [")[0] if line.startswith(":") else line
        for line in text.splitlines()
        if line and not line.startswith("#") and not any(mark in line for mark in DOCKERS_OWN)
    ]


def _environment(results: Path) -> dict[str, str]:
    """The test's own results root (and, through `_own_registry`, its own run registry)."""
    return {**os.environ, "HFTCHAOS_RESULTS": str(results)}


def _marked_processes(results: Path) -> dict[int, tuple[str, str]]:
    found = {}
    for process in psutil.process_iter():
        try:
            marker = process.environ().get(RUN_MARKER_VARIABLE)
            if marker and Path(marker).is_relative_to(results.resolve()):
                found[process.pid] = (process.name(), process.status())
        except psutil.Error:
            continue
    return found


def _skewed_clocks(results: Path) -> dict[str, str]:
    """Offset files that do not say true time."""
    return {
        str(path): text
        for path in results.rglob("faketime.offset")
        if float(text := path.read_text().strip()) != 0
    }


def _snapshot(results: Path) -> dict[str, object]:
    return {
        "iptables": _iptables_rules(),
        "processes": _marked_processes(results),
        "clocks": _skewed_clocks(results),
    }


# -- seeing each fault in force -------------------------------------------------------------


def _journal(results: Path) -> list[dict[str, object]]:
    journals = list(results.rglob("journal.jsonl"))
    if not journals:
        return []
    lines = journals[0].read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _service_pid(results: Path, service: str) -> int | None:
    pids = [
        line["process"]["pid"]  # type: ignore[index]
        for line in _journal(results)
        if line["entry"] == "process" and line["process"]["service"] == service  # type: ignore[index]
    ]
    return pids[0] if pids else None


def _toxiproxy_api(results: Path) -> str | None:
    states = list(results.rglob("state.json"))
    if not states:
        return None
    services = json.loads(states[0].read_text())["services"]
    return f"http://127.0.0.1:{services['toxiproxy']['ports']['api']}"


def _proxy(results: Path) -> dict[str, object]:
    api = _toxiproxy_api(results)
    assert api is not None
    with urllib.request.urlopen(f"{api}/proxies/gateway-n2", timeout=2) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


def _in_force(kind: str, results: Path, before: dict[str, object]) -> bool:
    faulted = any(line["entry"] == "fault" for line in _journal(results))
    if not faulted:
        return False
    if kind in ("packet_loss", "partition"):
        return _iptables_rules() != before["iptables"]
    if kind == "clock_skew":
        return bool(_skewed_clocks(results))
    if kind == "pause":
        pid = _service_pid(results, "n2")
        return pid is not None and psutil.Process(pid).status() == psutil.STATUS_STOPPED
    if kind == "kill":
        pid = _service_pid(results, "n2")
        return pid is not None and not psutil.pid_exists(pid)
    if kind == "restart":
        return True  # over within a second of its journal line: killed mid-way or just after
    if kind == "link_down":
        return _proxy(results)["enabled"] is False
    return bool(_proxy(results)["toxics"])


def _wait_until(condition: Callable[[], bool], harness: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert harness.poll() is None, f"the harness ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _kill_mid_fault(tmp_path: Path, kind: str) -> tuple[Path, dict[str, object]]:
    results = tmp_path / "results"
    results.mkdir()
    before = _snapshot(results)
    environment = _environment(results)
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(_scenario(tmp_path, kind))],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until(lambda: _in_force(kind, results, before), harness, f"the {kind} in force")
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
    return results, before


def _settled(results: Path, before: dict[str, object]) -> dict[str, object]:
    """The snapshot once the kernel has finished ending what died with the harness."""
    deadline = time.monotonic() + 15
    while (after := _snapshot(results)) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    return after


def _hftchaos(results: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *arguments],
        env=_environment(results),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("kind", sorted(fault_kinds()))
def test_heal_after_sigkill_during_each_fault_kind(tmp_path: Path, kind: str) -> None:
    results, before = _kill_mid_fault(tmp_path, kind)
    heal = _hftchaos(results, "heal")
    assert heal.returncode == 0, heal.stdout + heal.stderr
    assert "healed run" in heal.stdout, heal.stdout
    assert _settled(results, before) == before
    journal = _journal(results)
    assert journal[-1]["entry"] == "run_healed" and journal[-1]["errors"] == [], journal[-1]
    again = _hftchaos(results, "heal")
    assert again.returncode == 0 and "nothing to heal" in again.stdout, again.stdout


def test_the_next_command_heals_a_dead_run(tmp_path: Path) -> None:
    """Without `hftchaos heal`: any later command (here `runs`) notices and heals it."""
    results, before = _kill_mid_fault(tmp_path, "clock_skew")
    assert _skewed_clocks(results), "nothing left to heal: the test proves nothing"
    later = _hftchaos(results, "runs")
    assert "healed run" in later.stderr, later.stdout + later.stderr
    assert _settled(results, before) == before
