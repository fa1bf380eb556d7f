"""Runs the load worker as a child process and turns its output into `RequestRecord`s.

The worker (`python -m harness.load.worker`) imports locust, which monkey-patches the standard
library with gevent; this module must never import it. The child runs in its own process group
(so a signal reaches anything it forks) with a parent-death signal (so it dies if the harness
is SIGKILLed and no `finally` runs).

The parent-death signal fires when the *thread* that spawned the child exits, not the process:
call `start()` from a thread that outlives the load, such as the main thread of the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import BackendError
from harness.load import wire
from harness.records import RequestRecord
from harness.run_marker import marker_environment
from harness.scenario.model import LoadProfile

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 3.0  # between SIGTERM and SIGKILL
MALFORMED_LOGGED = 5  # malformed lines quoted in the log; the rest are only counted


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """The worker's closing line, the driver's own counts and the exit code.

    Fields from the worker stay at their defaults when it ended without a summary line
    (killed); `complete` tells the two apart."""

    exit_code: int | None
    complete: bool = False
    timed_out: bool = False  # wait() gave up and stopped the worker
    received: int = 0  # records parsed and handed to on_record
    malformed_lines: int = 0
    listener_errors: int = 0  # on_record raised
    user_class: str = ""
    requests: int = 0  # as counted by Locust
    failures: int = 0  # Locust: anything but acked or rejected
    median_ms: float | None = None  # Locust, from the actual send time
    p99_ms: float | None = None  # Locust, from the actual send time
    slots_scheduled: int = 0
    slots_claimed: int = 0
    slots_sent: int = 0
    records: int = 0  # records the worker wrote
    start_ns: int | None = None  # intended time of slot 0
    end_ns: int | None = None
    stopped_by: str = ""  # "completed" | "signal SIGTERM" | "deadline ..."


def worker_command(gateway: str, profile: LoadProfile, id_prefix: str, seed: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.load.worker",
        f"--gateway={gateway}",
        f"--rate={profile.rate_per_s!r}",
        f"--duration-s={profile.duration_s!r}",
        f"--users={profile.users}",
        f"--symbols={','.join(profile.symbols)}",
        f"--accounts={profile.accounts}",
        f"--mid-price={profile.mid_price!r}",
        f"--cancel-ratio={profile.cancel_ratio!r}",
        f"--request-timeout-s={profile.request_timeout_s!r}",
        f"--seed={seed}",
        f"--id-prefix={id_prefix}",
    ]


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGKILL it if we die."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class LoadDriver:
    """start() -> wait() -> stop(). stop() is idempotent; call it in a `finally`.

    `on_record` is called on the reader thread, once per request, as records arrive
    (batched by the worker every ~50 ms): it must be quick and thread-safe."""

    def __init__(
        self,
        gateway: str,
        profile: LoadProfile,
        id_prefix: str,
        seed: int,
        on_record: Callable[[RequestRecord], None],
        log_file: Path,
        run_dir: Path | None = None,
    ) -> None:
        self.gateway = gateway
        # Marks the worker as the run's (see harness.run_marker); defaults to the log's run.
        self.run_dir = run_dir if run_dir is not None else log_file.parent.parent
        self.profile = profile
        self.id_prefix = id_prefix
        self.seed = seed
        self.log_file = log_file
        self._on_record = on_record
        self._process: subprocess.Popen[bytes] | None = None
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
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Spawns the worker from the calling thread, which must outlive it (see module doc)."""
        if self._process is not None:
            raise BackendError("the load generator was already started")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = worker_command(self.gateway, self.profile, self.id_prefix, self.seed)
        with self.log_file.open("ab") as log_output:
            try:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log_output,
                    env={**os.environ, **marker_environment(self.run_dir)},
                    process_group=0,
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise BackendError(f"cannot start the load generator: {error}") from error
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stdout,), name="load-reader", daemon=True
        )
        self._reader.start()

    def wait_started(self, timeout_s: float) -> int | None:
        """The intended time of slot 0 (CLOCK_MONOTONIC ns), once the worker has fixed it:
        importing locust and starting users takes most of a second after `start()`, so this,
        not the moment of `start()`, is when the load begins. None if it did not in time."""
        self._started.wait(timeout_s)
        return self._start_ns

    def wait(self, timeout_s: float) -> LoadSummary:
        """Waits for the worker to end by itself and for all its records to be delivered.
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
        self._join_reader()
        return self._result()

    def stop(self) -> None:
        """SIGTERM to the worker's group (it still writes its summary), SIGKILL after a grace."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("load generator ignored SIGTERM for %.0fs: killing it", STOP_GRACE_S)
                self._signal(signal.SIGKILL)
                process.wait()
        self._join_reader()

    def _signal(self, signum: int) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _join_reader(self) -> None:
        # The pipe reaches EOF when the worker and anything it forked have exited.
        if self._reader is not None:
            self._reader.join(timeout=STOP_GRACE_S)

    def _read(self, stream: IO[bytes]) -> None:
        try:
            with stream:
                for line in stream:
                    self._handle(line)
        finally:
            self._started.set()  # the worker is gone: nobody waits for a start that never comes

    def _handle(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            parsed = wire.parse_line(line)
        except ValueError as error:
            self._malformed += 1
            if self._malformed <= MALFORMED_LOGGED:
                log.warning("malformed line from the load generator (%s): %.200r", error, line)
            return
        if isinstance(parsed, RequestRecord):
            self._received += 1
            try:
                self._on_record(parsed)
            except Exception:
                self._listener_errors += 1
                if self._listener_errors <= MALFORMED_LOGGED:
                    log.exception("a load record listener failed")
        elif parsed.kind == wire.STARTED_KIND:
            start_ns = parsed.fields.get("start_ns")
            self._start_ns = start_ns if isinstance(start_ns, int) else None
            self._started.set()
        else:
            self._summary = parsed.fields

    def _result(self) -> LoadSummary:
        known = set(LoadSummary.__dataclass_fields__) - {
            "exit_code",
            "complete",
            "timed_out",
            "received",
            "malformed_lines",
            "listener_errors",
        }
        from_worker = {key: value for key, value in self._summary.items() if key in known}
        return LoadSummary(
            exit_code=self._process.returncode if self._process else None,
            complete=bool(self._summary),
            timed_out=self._timed_out,
            received=self._received,
            malformed_lines=self._malformed,
            listener_errors=self._listener_errors,
            **from_worker,
        )
