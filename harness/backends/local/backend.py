"""The embedded local backend: every service is a process group on a loopback address.

Why process groups: a service may fork (a launcher, a JVM with helpers); signalling the group
reaches all of it. Why a parent-death signal: if the harness itself is SIGKILLed, nothing runs
its `finally`, and the kernel is the only one left who can end the services.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from harness import settings
from harness.backends.base import ServiceFacts, ServiceState
from harness.backends.bringup import bring_up
from harness.backends.common import BackendCommon
from harness.backends.files import process_cpu_seconds
from harness.backends.local.namespaces import exec_prefix
from harness.backends.local.network_lifetime import NamespaceLifetime
from harness.errors import BackendError
from harness.faults import restore_session
from harness.faults.clock import faketime_environment, faketime_offset_text, offset_file
from harness.run_marker import marker_environment
from harness.store.atomic import write_text_atomically
from harness.topology.plan import Plan, PlannedService, service_owner

if TYPE_CHECKING:
    from harness.faults.base import ActiveFault
    from harness.faults.netfilter import CountedRule

PR_SET_PDEATHSIG = 1
STATE_FILE = "state.json"

Report = Callable[[str], None]


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGKILL it if we die."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class LocalBackend(BackendCommon):
    """Runs a `Plan` as local processes. Use as a context manager so teardown always runs."""

    def __init__(self, plan: Plan, report: Report | None = None) -> None:
        self.plan = plan
        self._report = report or (lambda _message: None)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._paused: set[str] = set()
        self._stopped: set[str] = set()
        # The parent-death signal fires when the *thread* that forked exits, so every spawn
        # happens on one thread that lives exactly as long as this backend.
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spawner")
        self._torn_down = False
        self._network: NamespaceLifetime | None = None

    # -- lifecycle of the whole topology ---------------------------------------------------

    def up(self) -> None:
        self._make_run_directories()
        if self.plan.network is not None:
            self._network = NamespaceLifetime(self.plan.network, self.plan.run_dir)
            self._network.create()
        bring_up(self, self._report)
        self._write_state(ready=True)

    def teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        running = [name for name in reversed(self.plan.order) if self._is_alive(name)]
        for name in running:
            self._signal(name, signal.SIGTERM)
            if name in self._paused:
                self._signal(name, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        deadline = time.monotonic() + max(
            (self.plan.services[name].stop_timeout_s for name in running), default=0
        )
        for name in running:
            self._reap(name, deadline)
        self._spawner.shutdown(wait=True)
        self.plan.reservations.release_all()
        restore_session.close_all()  # each holds its namespace: before the namespaces go
        if self._network is not None:
            for failure in self._network.remove():
                self._report(f"[red]could not remove:[/] {escape(failure)}")
        self._write_state(ready=False)

    # -- one service -------------------------------------------------------------------------

    def start(self, name: str) -> None:
        if self._is_alive(name):
            raise BackendError(f"{name} is already running (pid {self._processes[name].pid})")
        service = self.plan.services[name]
        self.plan.reservations.release(service_owner(name))
        self._processes[name] = self._spawner.submit(self._spawn, service).result()
        self._paused.discard(name)
        self._stopped.discard(name)
        self._write_state(ready=False)

    def stop(self, name: str) -> None:
        if not self._is_alive(name):
            return
        self._signal(name, signal.SIGTERM)
        if name in self._paused:
            self._signal(name, signal.SIGCONT)
        self._reap(name, time.monotonic() + self.plan.services[name].stop_timeout_s)
        self._stopped.add(name)

    def kill(self, name: str) -> None:
        if not self._is_alive(name):
            raise BackendError(f"cannot kill {name}: it is not running")
        self._signal(name, signal.SIGKILL)
        self._processes[name].wait()
        self._paused.discard(name)
        self._stopped.add(name)

    def pause(self, name: str) -> None:
        if not self._is_alive(name):
            raise BackendError(f"cannot pause {name}: it is not running")
        self._signal(name, signal.SIGSTOP)
        self._paused.add(name)

    def resume(self, name: str) -> None:
        if name in self._paused and self._is_alive(name):
            self._signal(name, signal.SIGCONT)
        self._paused.discard(name)

    def wait_healthy(self, name: str, timeout_s: float | None = None) -> None:
        def gone() -> str | None:
            process = self._processes.get(name)
            if process is None or process.poll() is not None:
                return f"exited (code {process.returncode if process else None})"
            return None

        self._wait_until_healthy(name, timeout_s, gone)

    def facts(self, name: str) -> ServiceFacts:
        service = self.plan.services[name]
        process = self._processes.get(name)
        return ServiceFacts(
            name=name,
            role=service.role,
            state=self._state(name),
            host=service.host,
            ports=dict(service.ports),
            log_file=service.log_file,
            pid=process.pid if process else None,
            exit_code=process.returncode if process else None,
        )

    def set_clock_offset(self, name: str, offset_ms: float) -> None:
        """Step the wall clock of a service started with `clock_control: true`."""
        self._require_clock_control(name)
        write_text_atomically(
            _faketime_file(self.plan.services[name]), faketime_offset_text(offset_ms)
        )

    # -- abilities: network control, log access, resource stats -----------------------------

    def drop_packets(self, run_id: str, key: str | int, name: str, percent: float) -> ActiveFault:
        from harness.backends.local import namespace_faults
        from harness.backends.local.network import inject_packet_loss

        if self.plan.network is not None:
            return namespace_faults.drop_packets(self.plan.network, run_id, key, name, percent)

        return inject_packet_loss(run_id, key, name, self.plan.services[name].host, percent)

    def partition(self, run_id: str, key: str | int, groups: list[list[str]]) -> ActiveFault:
        from harness.backends.local import namespace_faults
        from harness.backends.local.network import inject_partition

        if self.plan.network is not None:
            return namespace_faults.partition(self.plan.network, run_id, key, groups)

        hosts = [[(name, self.plan.services[name].host) for name in group] for group in groups]
        return inject_partition(run_id, key, hosts)

    def prepare_network_faults(self) -> None:
        # What the faults import is imported now, not when the first is due (~4 ms).
        from harness.backends.docker import netns
        from harness.backends.local import network as _network  # noqa: F401
        from harness.backends.local.namespace_faults import namespace_of
        from harness.faults import netfilter

        if self.plan.network is not None:
            network = self.plan.network
            netns.prepare([namespace_of(network, name) for name in network.nodes])
        else:
            netfilter.prepare()

    def rule_counters(self, tag: str) -> list[CountedRule]:
        from harness.backends.local import namespace_faults
        from harness.faults.netfilter import rule_counters

        if self.plan.network is not None:
            return namespace_faults.rule_counters(self.plan.network, tag)
        return rule_counters(tag)  # the host's tables: every rule acts on loopback

    def established_sockets(self, name: str, selector: Sequence[str]) -> str | None:
        from harness.backends.docker.netns import entering
        from harness.backends.local.namespace_faults import namespace_of
        from harness.faults.socket_counters import read_established

        if self.plan.network is not None:
            return read_established(selector, entering(namespace_of(self.plan.network, name)))
        return read_established(selector)  # every local service's sockets are the host's

    def network_address(self, name: str) -> str:
        return self.plan.services[name].host

    def cpu_seconds(self, name: str) -> float | None:
        process = self._processes.get(name)
        return process_cpu_seconds(process.pid) if process and process.poll() is None else None

    # -- internals ---------------------------------------------------------------------------

    def _spawn(self, service: PlannedService) -> subprocess.Popen[bytes]:
        service.directory.mkdir(parents=True, exist_ok=True)
        service.log_file.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, **self._harness_env(service), **service.env}
        command = service.command
        if self.plan.network is not None:
            command = [*exec_prefix(self.plan.network.nodes[service.name]), *command]
        with service.log_file.open("ab") as log:
            try:
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    cwd=service.directory,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise BackendError(
                    f"cannot start {service.name}: {service.command[0]}: {error.strerror}"
                ) from None

    def _harness_env(self, service: PlannedService) -> dict[str, str]:
        environment = {
            "PYTHONUNBUFFERED": "1",
            settings.SERVICE.variable: service.name,
            **marker_environment(self.plan.run_dir),
            settings.KAFKA_LIBS.variable: str(self.plan.toolchain.kafka_libs),
        }
        if service.clock_control:
            clock_file = _faketime_file(service)
            if not clock_file.exists():
                write_text_atomically(clock_file, faketime_offset_text(0))
            environment.update(faketime_environment(self.plan.toolchain.libfaketime, clock_file))
        return environment

    def wait_job(self, name: str) -> None:
        service = self.plan.services[name]
        process = self._processes[name]
        try:
            code = process.wait(timeout=service.job_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill(service.name)
            raise self._job_timed_out(name) from None
        self._check_job_exit(name, code)

    def _is_alive(self, name: str) -> bool:
        process = self._processes.get(name)
        return process is not None and process.poll() is None

    def _state(self, name: str) -> ServiceState:
        process = self._processes.get(name)
        if process is None:
            return ServiceState.NOT_STARTED
        if process.poll() is None:
            return ServiceState.PAUSED if name in self._paused else ServiceState.RUNNING
        return ServiceState.STOPPED if name in self._stopped else ServiceState.EXITED

    def _signal(self, name: str, signal_number: int) -> None:
        process = self._processes[name]
        # start_new_session made the service's pid its process-group id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal_number)

    def _reap(self, name: str, deadline: float) -> None:
        process = self._processes[name]
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._report(f"{escape(name)} ignored SIGTERM; sending SIGKILL")
            self._signal(name, signal.SIGKILL)
            process.wait()
        # Children that left the group's leader behind are ended too.
        self._signal(name, signal.SIGKILL)
        self._paused.discard(name)

    def _write_state(self, ready: bool) -> None:
        """Record pids so `hftchaos status` and `hftchaos down` work from another terminal."""
        state = {
            "topology": self.plan.topology_name,
            "supervisor_pid": os.getpid(),
            "ready": ready and not self._torn_down,
            "services": {
                name: {
                    "pid": process.pid,
                    "alive": process.poll() is None,
                    "role": self.plan.services[name].role,
                    "kind": self.plan.services[name].kind,
                    "host": self.plan.services[name].host,
                    "ports": self.plan.services[name].ports,
                    "health_url": _health_url(self.plan.services[name]),
                    "raft_status_url": self.plan.services[name].raft_status_url,
                    "raft_status": _raft_state(self.plan.services[name]),
                    "log_file": str(self.plan.services[name].log_file),
                }
                for name, process in self._processes.items()
            },
        }
        write_text_atomically(self.plan.run_dir / STATE_FILE, json.dumps(state, indent=2))


def _health_url(service: PlannedService) -> str | None:
    if service.health is None:
        return None
    if service.health.http:
        return service.health.http
    assert service.health.tcp is not None
    return f"tcp://{service.health.tcp[0]}:{service.health.tcp[1]}"


def _faketime_file(service: PlannedService) -> Path:
    return offset_file(service.directory)


def _raft_state(service: PlannedService) -> dict[str, object] | None:
    """The resolved `raft:` block, so `hftchaos status` reads members the way the run does."""
    return service.raft.model_dump(mode="json") if service.raft else None
