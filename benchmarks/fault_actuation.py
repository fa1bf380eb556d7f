"""Fault actuation on the local backend: from the instant a fault is due to the instant its
effect is seen, per fault type, over rounds on one reference topology.

Each effect is read from the kernel or the node, not from what the backend's call returned:
- kill: the node's process is gone or a zombie (psutil), and, as `kill_stopped`, the first
  instant the kernel shows it exiting (a thread watching its flags from before the kill);
- pause: the node's process is stopped (psutil: SIGSTOP taken);
- packet_loss, partition: the kernel's notice of each of the fault's rules going in, read
  by an `nft monitor rules` started before the round (netlink events, stamped by the thread
  that reads them), then the tagged rules confirmed in a fresh `iptables-save` (not timed);
  without nft, that listing itself is the check;
- clock_skew: the node's own /status reports a wall clock at least 90 % of the offset away.

A figure ends when the check that first sees the effect returns, so it includes that check;
each kind's `observe_ms` is the median time one such check takes (an `iptables-save` is
milliseconds; a monitor's event is stamped as it arrives, so its checks cost nothing of the
figure), to tell the observer's cost from the fault's. The network faults' kept-open programs
are started after bring-up, as a run starts them (`prepare_network_faults`).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import percentiles_ms
from benchmarks.figures import Figure, Measurement
from harness.backends.local.backend import LocalBackend
from harness.faults.netfilter import CHAIN
from harness.faults.netfilter import sweep as sweep_rules
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

POLL_S = 0.0002
# Between a fault's heal and the next fault, as a scenario's faults are apart: a rule added
# within ~20 ms of a deletion waits for the kernel to free the deleted ones (nf_tables frees
# them after an RCU grace period, and the next commit waits for that): packet loss right after
# a heal took 8-24 ms here, 20 ms or more after it 1.0-1.8 ms.
SETTLE_S = 0.1
EFFECT_TIMEOUT_S = 10.0
SKEW_MS = 5000.0
ENGINES = ("n1", "n2", "n3")
ROUNDS, QUICK_ROUNDS = 30, 2
KINDS = ("kill", "kill_stopped", "pause", "packet_loss", "partition", "clock_skew")


def timed(apply: Callable[[], Any], effect: Callable[[], bool]) -> tuple[int, int, Any]:
    """(due -> effect seen, the successful check's own duration, what apply returned)."""
    due = time.monotonic_ns()
    applied = apply()
    deadline = time.monotonic() + EFFECT_TIMEOUT_S
    while True:
        checking = time.monotonic_ns()
        if effect():
            seen = time.monotonic_ns()
            return seen - due, seen - checking, applied
        if time.monotonic() > deadline:
            raise RuntimeError("the fault had no visible effect within the timeout")
        time.sleep(POLL_S)


class RuleEvents:
    """`nft monitor rules` in the host's namespace: the instant each rule added to the
    harness's chain was announced by the kernel, as read here."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            ["nft", "monitor", "rules"], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._added: list[tuple[int, str]] = []  # (read at, chain)
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("add rule ip filter "):
                chain = line.split()[4]
                with self._lock:
                    self._added.append((time.monotonic_ns(), chain))

    def ready(self) -> None:
        """Wait until the monitor reports: a throwaway rule in and out of a chain of its own."""
        deadline = time.monotonic() + EFFECT_TIMEOUT_S
        chain = "HFTCHAOS-MONITOR"
        subprocess.run(["iptables", "-N", chain], check=True)
        try:
            while not self.since(0, chain):
                subprocess.run(["iptables", "-A", chain, "-j", "RETURN"], check=True)
                subprocess.run(["iptables", "-F", chain], check=True)
                if time.monotonic() > deadline:
                    raise RuntimeError("nft monitor reported no rule")
                time.sleep(0.05)
        finally:
            subprocess.run(["iptables", "-F", chain], check=False)
            subprocess.run(["iptables", "-X", chain], check=False)

    def since(self, instant_ns: int, chain: str = CHAIN) -> list[int]:
        """When each rule added to `chain` at or after `instant_ns` was announced."""
        with self._lock:
            return [at for at, its_chain in self._added if at >= instant_ns and its_chain == chain]

    def close(self) -> None:
        self._process.kill()
        self._process.wait()


def timed_rules(
    events: RuleEvents, apply: Callable[[], Any], tag: str, backend: LocalBackend
) -> tuple[int, int, Any]:
    """(due -> the kernel announced the fault's last rule, 0, the fault), the rules then
    confirmed by tag in a listing of the table."""
    due = time.monotonic_ns()
    fault = apply()
    wanted = len(fault.detail["rules"])
    deadline = time.monotonic() + EFFECT_TIMEOUT_S
    while len(events.since(due)) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError("the kernel announced none of the fault's rules in time")
        time.sleep(POLL_S)
    seen = events.since(due)[wanted - 1]
    if len(backend.rule_counters(tag)) != wanted:
        raise RuntimeError(f"the rules announced are not the fault's {wanted} tagged {tag}")
    return seen - due, 0, fault


def rules_listed(backend: LocalBackend, tag: str) -> Callable[[], bool]:
    return lambda: bool(backend.rule_counters(tag))


PF_EXITING = 0x4  # include/linux/sched.h: set as the task enters do_exit


class ExitWatch:
    """When the kernel first shows `pid` exiting (PF_EXITING in its flags, or gone): from
    then on the process runs none of its own code, while its memory is still being freed
    and its sockets are still open (they close after the memory, ~4 ms for an engine)."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._seen = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _exiting(self) -> bool:
        try:
            fields = self._stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return True
        return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)

    def _watch(self) -> None:
        deadline = time.monotonic() + EFFECT_TIMEOUT_S
        while not self._exiting() and time.monotonic() < deadline:
            time.sleep(POLL_S / 4)
        self._seen = time.monotonic_ns()

    def seen_ns(self) -> int:
        self._thread.join(EFFECT_TIMEOUT_S)
        if not self._seen:
            raise RuntimeError("the killed process never showed exiting")
        return self._seen


def process_status(pid: int) -> str:
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return "gone"


def pid_of(backend: LocalBackend, name: str) -> int:
    pid = backend.facts(name).pid
    if pid is None:
        raise RuntimeError(f"{name} has no process to act on")
    return pid


def wall_offset_ms(backend: LocalBackend, name: str) -> float:
    url = backend.plan.services[name].raft_status_url
    assert url is not None
    with urllib.request.urlopen(url, timeout=1) as response:
        document: dict[str, Any] = json.load(response)
    return float(document["wall_ns"] - time.time_ns()) / 1e6


def measure_round(
    backend: LocalBackend,
    index: int,
    samples: dict[str, list[tuple[int, int]]],
    events: RuleEvents | None,
) -> None:
    name = ENGINES[index % 3]
    others = [other for other in ENGINES if other != name]
    killed = pid_of(backend, name)
    stopped = ExitWatch(killed)
    due: list[int] = []

    def kill() -> None:
        due.append(time.monotonic_ns())
        backend.kill(name)

    took, check, _ = timed(kill, lambda: process_status(killed) in ("gone", psutil.STATUS_ZOMBIE))
    samples["kill"].append((took, check))
    samples["kill_stopped"].append((stopped.seen_ns() - due[0], 0))
    backend.start(name)
    backend.wait_healthy(name)
    paused = pid_of(backend, name)
    took, check, _ = timed(
        lambda: backend.pause(name), lambda: process_status(paused) == psutil.STATUS_STOPPED
    )
    samples["pause"].append((took, check))
    backend.resume(name)
    run = f"bench{index}"
    network_faults: dict[str, tuple[str, Callable[[], Any]]] = {
        "packet_loss": (f"hftchaos:{run}:1", lambda: backend.drop_packets(run, 1, name, 30)),
        "partition": (f"hftchaos:{run}:2", lambda: backend.partition(run, 2, [[name], others])),
    }
    for kind, (tag, apply) in network_faults.items():
        if events is not None:
            took, check, fault = timed_rules(events, apply, tag, backend)
        else:
            took, check, fault = timed(apply, rules_listed(backend, tag))
        samples[kind].append((took, check))
        fault.heal()
        time.sleep(SETTLE_S)
    took, check, _ = timed(
        lambda: backend.set_clock_offset(name, SKEW_MS),
        lambda: wall_offset_ms(backend, name) > SKEW_MS * 0.9,
    )
    samples["clock_skew"].append((took, check))
    backend.set_clock_offset(name, 0)


def measure(quick: bool) -> Measurement:
    rounds = QUICK_ROUNDS if quick else ROUNDS
    loaded = load_topology(REFERENCE_TOPOLOGY)
    topology = loaded.topology.with_clock_control(ENGINES)
    samples: dict[str, list[tuple[int, int]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="hftchaos-bench-actuation-") as work:
        plan = make_plan(loaded.with_topology(topology), Path(work) / "run", locate_toolchain())
        backend = LocalBackend(plan)
        events = RuleEvents() if shutil.which("nft") else None
        try:
            backend.up()
            backend.prepare_network_faults()
            if events is not None:
                events.ready()  # which deletes a rule and a chain: let the kernel free them
            time.sleep(SETTLE_S)
            for index in range(rounds):
                measure_round(backend, index, samples, events)
        finally:
            backend.teardown()
            for index in range(rounds):  # the chain too, once its last run is swept
                sweep_rules(f"bench{index}")
            if events is not None:
                events.close()
    observer = "nft monitor" if events is not None else "iptables-save"
    conditions = {
        "backend": "local",
        "topology": "reference",
        "rounds": rounds,
        "network_observer": observer,
    }
    figures = []
    details: dict[str, Any] = {}
    for kind, pairs in samples.items():
        took = percentiles_ms([due_to_seen for due_to_seen, _ in pairs])
        observe_ms = round(statistics.median(check for _, check in pairs) / 1e6, 3)
        details[kind] = {**took, "observe_ms": observe_ms}
        for label in ("p50_ms", "p99_ms"):
            figures.append(
                Figure(
                    name=f"{kind}_{label}",
                    value=took[label],
                    unit="ms",
                    better="lower",
                    conditions={**conditions, "observe_ms": observe_ms},
                    goal="<= 5" if label == "p99_ms" else "",
                )
            )
    return Measurement(figures, conditions=conditions, details=details)
