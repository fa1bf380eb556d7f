"""Runs the load as child processes, a Locust master and its workers, and turns the master's
output into batches of requests (`RequestBatch`: rows of `RequestRecord` fields).

Locust's distributed mode: the master (`python -m harness.load.master`) and its workers
(`python -m harness.load.worker`), each a process of its own, so the load path uses every
core instead of one: one worker per RATE_PER_WORKER of the schedule, at most one per core.
They import locust, which monkey-patches the standard library with gevent; this module must
never import it. The master runs in its own process group and the workers join it (so one
signal reaches them all), each with a parent-death signal (so they die if the harness is
SIGKILLed and no `finally` runs).

`HFTCHAOS_LOAD_WORKERS` sets the number of local workers (default: as above);
`HFTCHAOS_LOAD_REMOTE_WORKERS` makes the master also wait for that many workers started by
hand on other machines, and `HFTCHAOS_LOAD_BIND` (host:port) where it listens for them
(default: a free loopback port). See the README, "Load from several machines".

The parent-death signal fires when the *thread* that spawned the child exits, not the process:
call `start()` from a thread that outlives the load, such as the main thread of the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness import settings
from harness.errors import BackendError
from harness.load import wire
from harness.records import RequestBatch
from harness.run_marker import marker_environment
from harness.scenario.model import LoadProfile

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# What one worker sends on schedule (p99 send lateness of a few ms, measured against a static
# answer); a slower schedule gets fewer workers: each one costs a second of start-up imports
# on a core the topology under test needs, and every run starts the load twice (warm-up).
RATE_PER_WORKER = 1000.0
STOP_GRACE_S = 3.0  # between SIGTERM and SIGKILL
MALFORMED_LOGGED = 5  # malformed lines quoted in the log; the rest are only counted
WORKERS_VARIABLE = settings.LOAD_WORKERS.variable
REMOTE_WORKERS_VARIABLE = settings.LOAD_REMOTE_WORKERS.variable
BIND_VARIABLE = settings.LOAD_BIND.variable


@dataclass(frozen=True, slots=True)
class Topology:
    """How many workers, and where the master listens for them."""

    local_workers: int
    remote_workers: int
    bind: str

    @property
    def workers(self) -> int:
        return self.local_workers + self.remote_workers

    @property
    def master_address(self) -> str:
        """Where a local worker dials: the bind address, or loopback if bound to all."""
        host, _, port = self.bind.rpartition(":")
        return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def _count(environ: Mapping[str, str], name: str, default: int, least: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < least:
        raise BackendError(f"{name}={text!r}: expected a whole number >= {least}")
    return int(text)


def load_topology(
    environ: Mapping[str, str] | None = None, rate_per_s: float | None = None
) -> Topology:
    """Workers and bind address from the environment; without HFTCHAOS_LOAD_WORKERS, one
    local worker per RATE_PER_WORKER of `rate_per_s` (when given), at most one per core."""
    environ = os.environ if environ is None else environ
    cores = os.cpu_count() or 1
    wanted = cores if rate_per_s is None else math.ceil(rate_per_s / RATE_PER_WORKER)
    bind = environ.get(BIND_VARIABLE, "").strip() or f"127.0.0.1:{free_loopback_port()}"
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise BackendError(f"{BIND_VARIABLE}={bind!r}: expected host:port")
    return Topology(
        local_workers=_count(environ, WORKERS_VARIABLE, max(1, min(cores, wanted)), 0),
        remote_workers=_count(environ, REMOTE_WORKERS_VARIABLE, 0, 0),
        bind=bind,
    )


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """The worker's closing line, the driver's own counts and the exit code.

    Fields from the worker stay at their defaults when it ended without a summary line
    (killed); `complete` tells the two apart."""

    exit_code: int | None
    complete: bool = False
    timed_out: bool = False  # wait() gave up and stopped the worker
    received: int = 0  # requests parsed and handed to on_requests
    malformed_lines: int = 0
    listener_errors: int = 0  # on_requests raised
    workers: int = 0  # the master waited for
    workers_finished: int = 0  # sent their counts before the end
    requests: int = 0  # sent, over all workers
    failures: int = 0  # sent, and neither acked nor rejected
    slots_scheduled: int = 0
    slots_claimed: int = 0
    slots_sent: int = 0
    records: int = 0  # records the workers made
    forwarded: int = 0  # records the master wrote
    start_ns: int | None = None  # intended time of slot 0
    end_ns: int | None = None
    stopped_by: str = ""  # "completed" | "signal SIGTERM" | "deadline ..."


def master_command(
    gateway: str,
    profile: LoadProfile,
    id_prefix: str,
    seed: int,
    topology: Topology,
    targets: tuple[str, ...] = (),
    not_before_ns: int | None = None,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.load.master",
        f"--workers={topology.workers}",
        f"--bind={topology.bind}",
        f"--gateway={gateway}",
        f"--rate={profile.rate_per_s!r}",
        f"--duration-s={profile.duration_s!r}",
        f"--users={max(profile.users, topology.workers)}",  # at least one sender per worker
        f"--symbols={','.join(profile.symbols)}",
        f"--accounts={profile.accounts}",
        f"--mid-price={profile.mid_price!r}",
        f"--cancel-ratio={profile.cancel_ratio!r}",
        f"--request-timeout-s={profile.request_timeout_s!r}",
        f"--seed={seed}",
        f"--id-prefix={id_prefix}",
        f"--targets={','.join(targets)}",
        f"--http-profile={profile.http.model_dump_json(by_alias=True) if profile.http else ''}",
        f"--user-class={profile.user_class.model_dump_json() if profile.user_class else ''}",
        f"--not-before-ns={not_before_ns or 0}",
    ]


def worker_command(master_address: str) -> list[str]:
    return [sys.executable, "-m", "harness.load.worker", f"--master={master_address}"]


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGKILL it if we die."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class LoadDriver:
    """start() -> wait() -> stop(). stop() is idempotent; call it in a `finally`.

    `on_requests` is called on the reader thread with each batch of requests as it arrives
    (the workers send theirs every ~50 ms): it must be quick and thread-safe."""

    def __init__(
        self,
        gateway: str,
        profile: LoadProfile,
        id_prefix: str,
        seed: int,
        on_requests: Callable[[RequestBatch], None],
        log_file: Path,
        run_dir: Path | None = None,
        topology: Topology | None = None,
        targets: tuple[str, ...] = (),
    ) -> None:
        self.gateway = gateway
        self.targets = targets
        # Marks the processes as the run's (see harness.run_marker); defaults to the log's run.
        self.run_dir = run_dir if run_dir is not None else log_file.parent.parent
        self.profile = profile
        self.id_prefix = id_prefix
        self.seed = seed
        self.log_file = log_file
        self.topology = topology
        self._on_requests = on_requests
        self._process: subprocess.Popen[bytes] | None = None  # the master
        self._workers: list[subprocess.Popen[bytes]] = []
        self._reader: threading.Thread | None = None
        self._summary: dict[str, Any] = {}
        self._started = threading.Event()
        self._start_ns: int | None = None
        self._received = 0
        self._malformed = 0
        self._listener_errors = 0
        self._timed_out = False

    @property
    def pid(self) -> int | None:
        """The master's, which is also the process group of all of them."""
        return self._process.pid if self._process else None

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in (self._process, *self._workers) if process]

    def start(self, not_before_ns: int | None = None) -> None:
        """Spawns master and workers from the calling thread, which must outlive them. Slot 0
        is never before `not_before_ns` (CLOCK_MONOTONIC): a load may start while another
        (a warm-up) still runs and take up the schedule the instant that one ends."""
        if self._process is not None:
            raise BackendError("the load generator was already started")
        topology = self.topology or load_topology(rate_per_s=self.profile.rate_per_s)
        self.topology = topology
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = master_command(
            self.gateway,
            self.profile,
            self.id_prefix,
            self.seed,
            topology,
            self.targets,
            not_before_ns,
        )
        with self.log_file.open("ab") as log_output:
            self._process = self._spawn(command, subprocess.PIPE, log_output, group=0)
            for _ in range(topology.local_workers):
                worker = worker_command(topology.master_address)
                self._workers.append(self._spawn(worker, log_output, log_output, self._process.pid))
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stdout,), name="load-reader", daemon=True
        )
        self._reader.start()

    def _spawn(self, command: list[str], stdout: Any, stderr: Any, group: int) -> Any:
        try:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, **marker_environment(self.run_dir)},
                process_group=group,
                preexec_fn=_die_with_parent,
            )
        except OSError as error:
            if self._process is not None:
                self._signal(signal.SIGKILL)
            raise BackendError(f"cannot start the load generator: {error}") from error

    def wait_started(self, timeout_s: float) -> int | None:
        """The intended time of slot 0 (CLOCK_MONOTONIC ns), once the master has fixed it:
        importing locust, connecting the workers and spawning users take a second or two after
        `start()`, so this, not the moment of `start()`, is when the load begins. None if it
        did not in time."""
        self._started.wait(timeout_s)
        return self._start_ns

    def wait(self, timeout_s: float) -> LoadSummary:
        """Waits for the master to end by itself and for all its records to be delivered.
        After `timeout_s` it is stopped, and the summary says `timed_out`."""
        process = self._process
        if process is None:
            return self._result()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("load generator still running after %.1fs: stopping it", timeout_s)
            self._timed_out = True
        self.stop()
        return self._result()

    def stop(self) -> None:
        """SIGTERM to the group (the master still writes its summary), SIGKILL after a grace;
        then the workers, which the master's quit normally ends."""
        process = self._process
        if process is None:
            return
        for child in (process, *self._workers):
            if child.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    child.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "load generator ignored SIGTERM for %.0fs: killing it", STOP_GRACE_S
                    )
                    self._signal(signal.SIGKILL)
                    child.wait()
        self._join_reader()

    def _signal(self, signum: int) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _join_reader(self) -> None:
        # The pipe reaches EOF when the master (its only writer) has exited.
        if self._reader is not None:
            self._reader.join(timeout=STOP_GRACE_S)

    def _read(self, stream: IO[bytes]) -> None:
        try:
            with stream:
                for line in stream:
                    self._handle(line)
        finally:
            self._started.set()  # the master is gone: nobody waits for a start that never comes

    def _handle(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            parsed = wire.parse_line(line)
        except ValueError as error:
            self._count_malformed(str(error), line)
            return
        if isinstance(parsed, wire.Batch):
            for reason in parsed.malformed:
                self._count_malformed(reason, line)
            if parsed.requests.rows:
                self._deliver(parsed.requests)
        elif parsed.kind == wire.STARTED_KIND:
            start_ns = parsed.fields.get("start_ns")
            self._start_ns = start_ns if isinstance(start_ns, int) else None
            self._started.set()
        else:
            self._summary = parsed.fields

    def _count_malformed(self, reason: str, line: bytes) -> None:
        self._malformed += 1
        if self._malformed <= MALFORMED_LOGGED:
            log.warning("malformed record from the load generator (%s): %.200r", reason, line)

    def _deliver(self, requests: RequestBatch) -> None:
        self._received += len(requests)
        try:
            self._on_requests(requests)
        except Exception:
            self._listener_errors += 1
            if self._listener_errors <= MALFORMED_LOGGED:
                log.exception("a load record listener failed")

    def _result(self) -> LoadSummary:
        known = set(LoadSummary.__dataclass_fields__) - {
            "exit_code",
            "complete",
            "timed_out",
            "received",
            "malformed_lines",
            "listener_errors",
        }
        from_master = {key: value for key, value in self._summary.items() if key in known}
        return LoadSummary(
            exit_code=self._process.returncode if self._process else None,
            complete=bool(self._summary),
            timed_out=self._timed_out,
            received=self._received,
            malformed_lines=self._malformed,
            listener_errors=self._listener_errors,
            **from_master,
        )
