"""A kept-open `iptables-restore --noflush` per network context (the host, or one namespace),
so a fault's rules go in with one write to a program already running instead of starting one:
starting iptables-restore costs ~4 ms, most of a network fault's actuation.

iptables-restore commits each `*filter ... COMMIT` block as soon as it has read it (per table)
and says nothing when that succeeds; when it fails it names the line and exits. So a block is
known to be in force when the program sleeps reading its standard input again with nothing
left in the pipe: the kernel shows that in /proc (`syscall` gives the system call a sleeping
task is in and its arguments, here read on fd 0; `status` counts its voluntary switches, and
one since the write means this read is a later one than the read the write woke). Checked by
hand on iptables 1.8.9 (nf_tables): the program refreshes its rule cache at every commit, so
rules that other programs add or delete between two blocks are kept, never duplicated.

Where /proc does not show it (an architecture whose read call this module does not know), each
block runs as a program of its own, as before.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import fcntl
import os
import platform
import shlex
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import BackendError, RuntimeEnvironmentError

TIMEOUT_S = 10.0
POLL_S = 0.00005
RESTORE = ("iptables-restore", "--noflush")
EMPTY_BLOCK = "*filter\nCOMMIT\n"
# The number of the read system call, as /proc/<pid>/syscall gives it.
_READ_CALLS = {"x86_64": "0", "amd64": "0", "aarch64": "63", "arm64": "63"}
READ_CALL = _READ_CALLS.get(platform.machine().lower())

# How one restore script runs as a program of its own (the fallback): command, its input.
RunOnce = Callable[[Sequence[str], str], object]


class RestoreSession:
    """One iptables-restore process in the network context `prefix` enters (empty: the host)."""

    def __init__(self, prefix: Sequence[str]) -> None:
        self.prefix = tuple(prefix)
        self.command = shlex.join([*self.prefix, *RESTORE])
        self._lock = threading.Lock()
        try:
            # Its own session: a Ctrl-C at the terminal must not end it while faults heal.
            self._process = subprocess.Popen(
                [*self.prefix, *RESTORE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise RuntimeEnvironmentError(f"`{self.command}`: a program is not installed") from None
        assert self._process.stdin is not None
        self._stdin = self._process.stdin.fileno()
        self._wait_idle(self._switches(), started=True)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def apply(self, script: str) -> None:
        """Write one or more `*table ... COMMIT` blocks; return once they are in force."""
        with self._lock:
            self.wait_applied(self.write(script))

    def write(self, script: str) -> int:
        """Hand the program `script` (the caller holds `lock`); what `wait_applied` needs."""
        if not self.alive:
            raise BackendError(f"`{self.command}` is no longer running")
        switches = self._switches()
        data = script.encode()
        while data:
            written = os.write(self._stdin, data)
            data = data[written:]
        return switches

    def wait_applied(self, switches: int) -> None:
        """Return once what `write` handed over is in force (the caller holds `lock`)."""
        self._wait_idle(switches, started=False)

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def close(self) -> None:
        """End the program: at the end of its input it exits by itself."""
        with contextlib.suppress(OSError):
            os.close(self._stdin)
        try:
            self._process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()

    def _wait_idle(self, switches: int, *, started: bool) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not self._idle(switches, started):
            if not self.alive:
                # A refused block, or a namespace that is gone: BackendError, as for a program.
                raise BackendError(f"`{self.command}` failed: {self._message()}")
            if time.monotonic() > deadline:
                self._process.kill()
                raise RuntimeEnvironmentError(f"`{self.command}` did not answer in {TIMEOUT_S} s")
            time.sleep(POLL_S)

    def _idle(self, switches: int, started: bool) -> bool:
        """Asleep reading stdin, with nothing left to read, in a later read than the last."""
        if _unread(self._stdin):
            return False
        proc = Path(f"/proc/{self._process.pid}")
        try:
            call = (proc / "syscall").read_text().split()
            if started:  # the prefix (nsenter, ip netns exec) replaces itself with the program
                program = (proc / "cmdline").read_bytes().split(b"\0")[0]
                if not program.endswith(b"iptables-restore"):
                    return False
        except OSError:
            return False
        reading_stdin = len(call) > 1 and call[0] == READ_CALL and int(call[1], 16) == 0
        return reading_stdin and (started or self._switches() > switches)

    def _switches(self) -> int:
        try:
            status = Path(f"/proc/{self._process.pid}/status").read_text()
        except OSError:
            return -1
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
        return -1

    def _message(self) -> str:
        stderr = self._process.stderr
        text = stderr.read().decode(errors="replace") if stderr is not None else ""
        return " ".join(text.split()) or f"exit {self._process.returncode}"


def _unread(fd: int) -> int:
    pending = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, pending)
    return pending[0]


def supported() -> bool:
    return READ_CALL is not None and Path("/proc/self/syscall").exists()


_sessions: dict[tuple[str, ...], RestoreSession] = {}
_sessions_lock = threading.Lock()


def _session(prefix: Sequence[str]) -> RestoreSession:
    key = tuple(prefix)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None or not session.alive:
            session = _sessions[key] = RestoreSession(key)
        return session


def prepare(prefix: Sequence[str] = ()) -> None:
    """Start the context's program now, and have it read the table once (an empty block:
    its first commit otherwise takes ~1 ms more), so the first fault does not pay for it."""
    if supported():
        _session(prefix).apply(EMPTY_BLOCK)


def apply(prefix: Sequence[str], script: str, run_once: RunOnce) -> None:
    """Apply `script` in the context `prefix` enters, through its kept-open program (started
    if it is not running); `run_once(command, script)` runs it as a program of its own where
    /proc cannot tell when a block is in force. A refused block ends the program (the next
    starts a new one) and raises."""
    apply_each([(prefix, script)], run_once)


def apply_each(blocks: Sequence[tuple[Sequence[str], str]], run_once: RunOnce) -> None:
    """Apply each (prefix, script), every one in its own context, at once: all are written
    before any is waited for, so a fault's rules in eight namespaces take about as long as in
    one. Every block is waited for; then the first failure, if any, is raised."""
    if len({tuple(prefix) for prefix, _ in blocks}) != len(blocks):
        raise ValueError("one block a network context")
    if not supported():
        for prefix, script in blocks:
            run_once([*prefix, *RESTORE, "-w", "5"], script)
        return
    sessions = [(_session(prefix), script) for prefix, script in blocks]
    failures: list[BaseException] = []
    with contextlib.ExitStack() as held:
        for session, _ in sorted(sessions, key=lambda pair: pair[0].prefix):  # one order
            held.enter_context(session.lock)
        written = []
        for session, script in sessions:
            try:
                written.append((session, session.write(script)))
            except BaseException as error:
                failures.append(error)
        for session, switches in written:
            try:
                session.wait_applied(switches)
            except BaseException as error:
                failures.append(error)
    with _sessions_lock:
        for session, _ in sessions:
            if _sessions.get(session.prefix) is session and not session.alive:
                del _sessions[session.prefix]
    if failures:
        raise failures[0]


def close(prefix: Sequence[str]) -> None:
    with _sessions_lock:
        session = _sessions.pop(tuple(prefix), None)
    if session is not None:
        session.close()


def close_all() -> None:
    """End every kept-open program (a backend's teardown, and this process's exit)."""
    with _sessions_lock:
        sessions = list(_sessions.values())
        _sessions.clear()
    for session in sessions:
        session.close()


atexit.register(close_all)
