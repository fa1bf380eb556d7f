"""The Docker backend: every service a container on the run's own bridge network.

Containers are named and labelled with the run (`leftovers.py`), reach each other by service
name, and publish their ports on 127.0.0.1 only, where the harness reaches them
(`realization.py`). The start-order rules are the local backend's (`bringup.py`). Kill,
pause, resume and restart go through the SDK; kernel-level faults through `nsenter` into a
container's own network namespace (`netns.py`); clock skew through libfaketime in the image
and an offset file in the service's mounted directory. Teardown removes every container,
volume and network of the run, whatever ended it.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psutil

from harness.backends.base import BackendDescription, ServiceFacts, ServiceState
from harness.backends.bringup import bring_up
from harness.backends.common import BackendCommon
from harness.backends.docker import netns
from harness.backends.docker.containers import create_arguments, offset_file
from harness.backends.docker.engine import engine_client, engine_version
from harness.backends.docker.leftovers import labels_for, remove_run, sweep_dead_runs
from harness.backends.docker.logs import LogFollower
from harness.backends.docker.reaper import start_reaper
from harness.backends.docker.userland_proxy import proxy_warning
from harness.backends.files import process_cpu_seconds
from harness.backends.health import CHECK_TIMEOUT_S, check_health
from harness.errors import BackendError
from harness.faults import restore_session
from harness.faults.clock import faketime_offset_text
from harness.store.atomic import write_text_atomically
from harness.topology.plan import Plan, service_owner

if TYPE_CHECKING:
    from harness.faults.base import ActiveFault
    from harness.faults.netfilter import CountedRule

Report = Callable[[str], None]
STATES = {"running": ServiceState.RUNNING, "paused": ServiceState.PAUSED}
LOG_DRAIN_S = 2.0


def service_pid(init_pid: int | None) -> int | None:
    """The service's own process: the one child of the container's init (`init: True`), whose
    maps, environment and CPU time are the service's; the init's pid until it has forked."""
    if init_pid is None:
        return None
    try:
        children = psutil.Process(init_pid).children()
    except psutil.Error:
        return init_pid
    return children[0].pid if len(children) == 1 else init_pid


def run_label(plan: Plan) -> str:
    """Short, unique, and valid in container and network names."""
    stamp = re.sub(r"[^a-z0-9]", "", plan.run_dir.name.lower())[-8:]
    return f"{stamp}{secrets.token_hex(3)}"


class DockerBackend(BackendCommon):
    def __init__(self, plan: Plan, report: Report | None = None) -> None:
        self.plan = plan
        self._report = report or (lambda _message: None)
        self._client = engine_client()
        self.run = run_label(plan)
        self.network = f"hftchaos-{self.run}"
        self.engine_version = engine_version(self._client)
        self.images: dict[str, str] = {}  # service -> the image reference it runs
        self._containers: dict[str, Any] = {}
        self._followers: list[LogFollower] = []
        self._stopped: set[str] = set()
        # Per service, its namespace as last read and the start time of the process holding it.
        self._namespaces: dict[str, tuple[netns.Namespace, float]] = {}
        self._paused: set[str] = set()
        self._network_prepared = False
        self._torn_down = False
        self.warnings: tuple[str, ...] = ()

    # -- the whole topology ------------------------------------------------------------------

    def up(self) -> None:
        self._make_run_directories()
        for stale in sweep_dead_runs(self._client):
            self._report(f"removed containers and network of run {stale}, whose harness died")
        self.images = self._resolve_images()
        self._client.networks.create(
            self.network, driver="bridge", labels=labels_for(self.run), check_duplicate=True
        )
        start_reaper(self.run)  # removes the run's containers if this harness is killed
        bring_up(self, self._report)
        ports = [port for service in self.plan.services.values() for port in service.ports.values()]
        warning = proxy_warning(ports)
        self.warnings = (warning,) if warning else ()

    def teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        try:
            restore_session.close_all()
            for name in reversed(self.plan.order):
                if self._status(name) in ("running", "paused"):
                    self._stop_container(name, self.plan.services[name].stop_timeout_s)
        finally:
            remove_run(self._client, self.run)  # by label: also what a failed start left
            for follower in self._followers:
                follower.join(LOG_DRAIN_S)
            self.plan.reservations.release_all()

    def image_ids(self) -> dict[str, str]:
        return {name: self._client.images.get(ref).id for name, ref in self.images.items()}

    def describe(self) -> BackendDescription:
        return BackendDescription("docker", self.engine_version, self.image_ids(), self.warnings)

    # -- one service -------------------------------------------------------------------------

    def start(self, name: str) -> None:
        if self._status(name) in ("running", "paused"):
            raise BackendError(f"{name} is already running")
        service = self.plan.services[name]
        service.directory.mkdir(parents=True, exist_ok=True)
        self.plan.reservations.release(service_owner(name))
        container = self._containers.get(name)
        if container is None:
            arguments = create_arguments(
                self.plan, service, self.run, self.network, self.images[name]
            )
            container = self._client.containers.create(**arguments)
            self._containers[name] = container
        since = time.time()
        container.start()
        follower = LogFollower(container, service.log_file, since)
        follower.start()
        self._followers.append(follower)
        self._stopped.discard(name)
        if self._network_prepared:  # a new process, a new namespace: ready it as at bring-up
            netns.prepare([self.namespace(name)])

    def stop(self, name: str) -> None:
        if self._status(name) in ("running", "paused"):
            self._stop_container(name, self.plan.services[name].stop_timeout_s)
            self._stopped.add(name)
            self._forget_namespace(name)

    def kill(self, name: str) -> None:
        """SIGKILL the container's process. Sent from the host through a pidfd of the process
        the namespace cache vouches for (same pid, same start time), the signal lands at once;
        the engine's kill call (the fallback: paused, or not known here) took ~180 ms from the
        call to the process gone, and a failover is timed from the call."""
        try:
            self.namespace(name)  # the cache's, or read (as the status check did)
        except BackendError:
            raise BackendError(f"cannot kill {name}: it is not running") from None
        except KeyError:
            pass  # not on the run's network: no address, but a process all the same
        container = self._containers[name]
        known = self._namespaces.get(name)
        signalled = (
            known is not None and name not in self._paused and _kill_process(known[0].pid, known[1])
        )
        if not signalled:
            container.kill(signal="SIGKILL")
        container.wait(timeout=30)
        self._paused.discard(name)
        self._stopped.add(name)
        self._forget_namespace(name)

    def pause(self, name: str) -> None:
        if self._status(name) != "running":
            raise BackendError(f"cannot pause {name}: it is not running")
        self._containers[name].pause()
        self._paused.add(name)  # a frozen process is killed through the engine

    def resume(self, name: str) -> None:
        if self._status(name) == "paused":
            self._containers[name].unpause()
        self._paused.discard(name)

    def wait_healthy(self, name: str, timeout_s: float | None = None) -> None:
        def gone() -> str | None:
            status = self._status(name)
            return None if status in ("running", "paused") else f"exited ({status})"

        self._wait_until_healthy(name, timeout_s, gone, lambda _health: self._healthy(name))

    def wait_job(self, name: str) -> None:
        import requests.exceptions

        service = self.plan.services[name]
        try:
            code = self._containers[name].wait(timeout=service.job_timeout_s)["StatusCode"]
        except requests.exceptions.RequestException:
            self._containers[name].kill(signal="SIGKILL")
            raise self._job_timed_out(name) from None
        self._check_job_exit(name, code)

    def facts(self, name: str) -> ServiceFacts:
        service = self.plan.services[name]
        container = self._containers.get(name)
        state: dict[str, Any] = {}
        if container is not None:
            container.reload()
            state = container.attrs["State"]
        return ServiceFacts(
            name=name,
            role=service.role,
            state=self._state(name, container),
            host=service.host,
            ports=dict(service.ports),
            log_file=service.log_file,
            pid=service_pid(state.get("Pid") or None),
            container_id=container.id if container is not None else None,
            exit_code=state.get("ExitCode") if state.get("Status") == "exited" else None,
        )

    # -- abilities ---------------------------------------------------------------------------

    def set_clock_offset(self, name: str, offset_ms: float) -> None:
        self._require_clock_control(name)
        write_text_atomically(
            offset_file(self.plan.services[name]), faketime_offset_text(offset_ms)
        )

    def drop_packets(self, run_id: str, key: str | int, name: str, percent: float) -> ActiveFault:
        if not 0 < percent <= 100:
            raise BackendError(f"packet_loss percent must be in (0, 100], got {percent}")
        tag = netns.make_tag(run_id, key)
        target = self.namespace(name)
        peers = [space for space in self._namespaces_running() if space.service != name]
        rules = netns.random_loss_rules(tag, target, peers, percent / 100)
        return self._apply([name], rules, tag, {"percent": percent})

    def partition(self, run_id: str, key: str | int, groups: list[list[str]]) -> ActiveFault:
        groups = [group for group in groups if group]
        if len(groups) < 2:
            raise BackendError(f"a partition needs at least two non-empty groups, got {groups}")
        tag = netns.make_tag(run_id, key)
        spaces = [[self.namespace(name) for name in group] for group in groups]
        rules = netns.partition_rules(tag, spaces)
        return self._apply([n for g in groups for n in g], rules, tag, {"groups": groups})

    def prepare_network_faults(self) -> None:
        self._network_prepared = True
        netns.prepare(self._namespaces_running())

    def rule_counters(self, tag: str) -> list[CountedRule]:
        return netns.counted_tagged(self._namespaces_running(), tag)

    def established_sockets(self, name: str, selector: Sequence[str]) -> str | None:
        from harness.faults.socket_counters import read_established

        try:
            namespace = self.namespace(name)
        except BackendError:
            return None  # not running: no namespace, no sockets to read
        return read_established(selector, netns.entering(namespace))

    def network_address(self, name: str) -> str:
        return self.namespace(name).address

    def cpu_seconds(self, name: str) -> float | None:
        pid = self.facts(name).pid
        return process_cpu_seconds(pid) if pid else None

    # -- internals ---------------------------------------------------------------------------

    def _apply(
        self, targets: list[str], rules: list[netns.NamespaceRule], tag: str, what: dict[str, Any]
    ) -> ActiveFault:
        mechanism = "iptables DROP in each container's network namespace (nsenter)"
        return netns.inject(targets, rules, tag, {"mechanism": mechanism, **what})

    def namespace(self, name: str) -> netns.Namespace:
        """The container's namespace: as last read while its process (pid and start time) is
        the same, else asked of the engine (one API round trip a container, ~1-2 ms: a packet
        loss over eight containers spent ~15 ms asking before its rules went in)."""
        cached = self._namespace_if_current(name)
        if cached is not None:
            return cached
        container = self._containers.get(name)
        if container is None or self._status(name) not in ("running", "paused"):
            raise BackendError(f"{name} is not running, so it has no network namespace")
        attributes = container.attrs
        address = attributes["NetworkSettings"]["Networks"][self.network]["IPAddress"]
        namespace = netns.Namespace(name, int(attributes["State"]["Pid"]), address)
        started = _started(namespace.pid)
        if started is not None:
            self._namespaces[name] = (namespace, started)
        return namespace

    def _namespace_if_current(self, name: str) -> netns.Namespace | None:
        """The namespace last read, while its process is the same (pid and start time)."""
        known = self._namespaces.get(name)
        if known is not None and known[1] == _started(known[0].pid):
            return known[0]
        return None

    def _namespaces_running(self) -> list[netns.Namespace]:
        """Every running (or paused) container's namespace, from the cache where it holds."""
        found = []
        for name in self._containers:
            try:
                found.append(self.namespace(name))
            except BackendError:
                continue  # not running: no namespace
        return found

    def _forget_namespace(self, name: str) -> None:
        """A stopped container's namespace went with its process: end the kept-open program
        entered by that pid, which a later process could otherwise reuse."""
        known = self._namespaces.pop(name, None)
        if known is not None:
            netns.forget([known[0]])

    def _status(self, name: str) -> str:
        import docker.errors

        container = self._containers.get(name)
        if container is None:
            return "not started"
        try:
            container.reload()
        except docker.errors.NotFound:
            return "removed"
        return str(container.status)

    def _state(self, name: str, container: Any) -> ServiceState:
        if container is None:
            return ServiceState.NOT_STARTED
        status = str(container.status)
        if status in STATES:
            return STATES[status]
        return ServiceState.STOPPED if name in self._stopped else ServiceState.EXITED

    def _healthy(self, name: str) -> bool:
        health = self.plan.services[name].health
        assert health is not None
        if health.http or health.command:
            # docker-proxy answers, but no HTTP without the service; a command runs here.
            return check_health(health)
        assert health.tcp is not None
        # docker-proxy accepts on a published port before the service listens: ask the
        # container's own address instead.
        address = self.namespace(name).address
        try:
            with socket.create_connection((address, health.tcp[1]), timeout=CHECK_TIMEOUT_S):
                return True
        except OSError:
            return False

    def _stop_container(self, name: str, timeout_s: float) -> None:
        container = self._containers[name]
        if str(container.status) == "paused":
            container.unpause()  # a frozen process cannot act on SIGTERM
        container.stop(timeout=math.ceil(timeout_s))

    def _last_lines(self, name: str) -> str:
        time.sleep(0.2)  # let the follower write the container's last words
        return super()._last_lines(name)

    def _resolve_images(self) -> dict[str, str]:
        from harness.images.base import chosen_base, has_image
        from harness.images.build import build_images

        services = self.plan.services.values()
        bare = sorted(s.name for s in services if not s.image and not s.build)
        if bare:
            raise BackendError(
                f"services {bare} have neither image: nor build:, so the docker backend has "
                "nothing to run them in (targets/README.md, Images)"
            )
        builds = {s.build for s in services if s.build and not s.image}
        built = build_images(
            self._client, builds, chosen_base(None), self.plan.toolchain, self._report
        )
        for service in services:
            if service.image and not has_image(self._client, service.image):
                raise BackendError(
                    f"service {service.name}: image {service.image} is not on this Docker "
                    "engine; load or pull it first (docker load / docker pull)"
                )
        return {s.name: s.image or built[str(s.build)].tag for s in services}


def _started(pid: int) -> float | None:
    """When process `pid` started (None: no such process): a pid reused by a later process
    has another start time."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _kill_process(pid: int, started: float) -> bool:
    """SIGKILL `pid` if it is still the process that started at `started`: a pidfd holds that
    process between the check and the signal, so a reused pid is never signalled. False when
    it is gone or another."""
    try:
        handle = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if _started(pid) != started:
            return False
        signal.pidfd_send_signal(handle, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(handle)
