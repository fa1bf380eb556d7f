"""Bring a topology up from a file, and find a running one again (`status`, `down`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness import settings
from harness.backends.common import log_tail
from harness.backends.local.backend import STATE_FILE, LocalBackend, Report
from harness.errors import BackendError, InputError
from harness.paths import remove_tree, up_dir, up_root
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan


def open_local_backend(topology_file: Path, run_dir: Path, report: Report | None) -> LocalBackend:
    """Load, plan and wrap a topology; nothing is started until `backend.up()`."""
    loaded = load_topology(topology_file)
    plan = make_plan(loaded, run_dir, locate_toolchain())
    return LocalBackend(plan, report)


@dataclass(frozen=True)
class RunningTopology:
    run_dir: Path
    state: dict[str, Any]

    @property
    def supervisor_pid(self) -> int:
        return int(self.state["supervisor_pid"])

    def supervisor_alive(self) -> bool:
        return psutil.pid_exists(self.supervisor_pid) and _is_harness(self.supervisor_pid)


def read_running(topology_name: str) -> RunningTopology | None:
    run_dir = up_dir(topology_name)
    try:
        state = json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return RunningTopology(run_dir, state)


def topologies_up() -> list[str]:
    """The names of the topologies whose `up` supervisor is alive, sorted."""
    try:
        folders = sorted(p.name for p in up_root().iterdir() if p.is_dir())
    except OSError:
        return []
    names = []
    for name in folders:
        try:
            running = read_running(name)
        except InputError:  # a folder that is not a topology name
            continue
        if running is not None and running.supervisor_alive():
            names.append(name)
    return names


def chosen_topology(name: str | None, default: str = "reference") -> str:
    """`--name`, else the one topology that is up, else `default`; several up is an error."""
    if name is not None:
        return name
    up = topologies_up()
    if len(up) > 1:
        raise BackendError(f"{len(up)} topologies are up ({', '.join(up)}): choose one with --name")
    return up[0] if up else default


def _is_harness(pid: int) -> bool:
    try:
        return "harness" in " ".join(psutil.Process(pid).cmdline()) or "hftchaos" in " ".join(
            psutil.Process(pid).cmdline()
        )
    except psutil.Error:
        return False


def prepare_up_dir(topology_name: str) -> Path:
    running = read_running(topology_name)
    if running and running.supervisor_alive():
        raise BackendError(
            f"topology {topology_name!r} is already up (supervisor pid "
            f"{running.supervisor_pid}); run `hftchaos down` first"
        )
    run_dir = up_dir(topology_name)
    remove_tree(run_dir, up_root())
    run_dir.mkdir(parents=True)
    return run_dir


def start_detached(topology_file: Path, topology_name: str, timeout_s: float = 300) -> Path:
    """Run `hftchaos up` as a background supervisor and return once it reports ready."""
    run_dir = prepare_up_dir(topology_name)
    log = (run_dir / "supervisor.log").open("ab")
    command = [sys.executable, "-m", "harness.cli", "up", "--topology", str(topology_file)]
    supervisor = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = read_running(topology_name)
        if running and running.state.get("ready") and running.supervisor_pid == supervisor.pid:
            return run_dir
        if supervisor.poll() is not None:
            raise BackendError(
                f"`hftchaos up` failed; last lines of {run_dir / 'supervisor.log'}:\n"
                f"{log_tail(run_dir / 'supervisor.log')}"
            )
        time.sleep(0.2)
    supervisor.terminate()
    raise BackendError(f"topology not up after {timeout_s:.0f}s; see {run_dir}")


def bring_down(topology_name: str, timeout_s: float = 60) -> list[str]:
    """Stop the supervisor (it tears down its services); sweep anything it left behind."""
    running = read_running(topology_name)
    if running is None:
        return []
    if running.supervisor_alive() and running.supervisor_pid != os.getpid():
        os.kill(running.supervisor_pid, signal.SIGTERM)
        try:
            psutil.Process(running.supervisor_pid).wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            os.kill(running.supervisor_pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    return sweep_services(running.state)


def sweep_services(state: dict[str, Any]) -> list[str]:
    """Kill recorded service processes that still run; returns the names it had to kill.

    A pid may have been reused since, so only a process whose environment names the
    service (HFTCHAOS_SERVICE, set by the backend) is touched.
    """
    killed = []
    for name, facts in state.get("services", {}).items():
        try:
            process = psutil.Process(int(facts["pid"]))
            if process.environ().get(settings.SERVICE.variable) != name:
                continue
            os.killpg(process.pid, signal.SIGKILL)
            killed.append(name)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed
