"""Clock skew through the real libfaketime: a Python child whose wall clock the test moves.

The child prints (wall, monotonic, loop duration) every ~20 ms. CLOCK_MONOTONIC is one clock
for every process and is not faked, so the child's true wall time at a line is the parent's
`time.time() - time.monotonic()` plus the child's monotonic reading: the offset is measured
exactly, without the pipe's latency.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.errors import BackendError
from harness.faults.clock import faketime_environment, faketime_offset_text
from harness.toolchain import locate_toolchain

pytestmark = pytest.mark.integration

TOLERANCE_S = 0.050

CHILD = """
import sys, threading, time
event = threading.Event()
while True:
    started = time.monotonic()
    event.wait(0.01)
    time.sleep(0.01)
    now = time.monotonic()
    print(f"{time.time():.6f} {now:.6f} {now - started:.6f}", flush=True)
"""


@dataclass(frozen=True)
class Line:
    wall: float
    monotonic: float
    loop_s: float  # one Event.wait(0.01) + sleep(0.01), by the monotonic clock


def write_text(file: Path, text: str) -> None:
    staging = file.with_suffix(".tmp")
    staging.write_text(text)
    staging.replace(file)  # libfaketime never reads a half-written file


def write_offset(file: Path, offset_ms: float) -> None:
    write_text(file, faketime_offset_text(offset_ms))


def child_environment(offset_file: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "FAKETIME"}
    library = locate_toolchain().libfaketime
    environment.update(faketime_environment(library, offset_file))
    return environment


@pytest.fixture
def offset_file(tmp_path: Path) -> Path:
    file = tmp_path / "faketime.offset"
    write_offset(file, 0)
    return file


@pytest.fixture
def skewed_child(offset_file: Path) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env=child_environment(offset_file),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield child
    finally:
        child.kill()
        child.wait(timeout=5)
        assert child.stdout is not None
        child.stdout.close()


def lines_after(child: subprocess.Popen[str], monotonic_from: float, count: int) -> list[Line]:
    """The first `count` lines stamped (by the child's monotonic clock) after `monotonic_from`."""
    assert child.stdout is not None
    found: list[Line] = []
    deadline = time.monotonic() + 5
    while len(found) < count:
        assert time.monotonic() < deadline, "the child stopped printing"
        text = child.stdout.readline()
        assert text, f"the child exited with {child.poll()}"
        wall, monotonic, loop_s = (float(word) for word in text.split())
        if monotonic > monotonic_from:
            found.append(Line(wall, monotonic, loop_s))
    return found


def observed_offset_s(line: Line) -> float:
    true_wall = time.time() - time.monotonic() + line.monotonic
    return line.wall - true_wall


@pytest.mark.parametrize(
    ("offset_ms", "text"),
    [
        (5000, "+5.000000\n"),
        (-750, "-0.750000\n"),
        (0, "+0.000000\n"),
        (-0.0, "+0.000000\n"),
        (0.0004, "+0.000000\n"),
        (3_600_000, "+3600.000000\n"),
        (-0.25, "-0.000250\n"),
    ],
)
def test_offset_text_is_signed_seconds_without_unit_letters(offset_ms: float, text: str) -> None:
    assert faketime_offset_text(offset_ms) == text


@pytest.mark.parametrize("offset_ms", [float("nan"), float("inf")])
def test_offset_must_be_finite(offset_ms: float) -> None:
    with pytest.raises(BackendError):
        faketime_offset_text(offset_ms)


def test_written_offsets_move_the_wall_clock_and_nothing_else(
    skewed_child: subprocess.Popen[str], offset_file: Path
) -> None:
    seen: list[Line] = lines_after(skewed_child, 0, 5)
    for offset_ms in (5000, -750, -5000, 250, 0):
        write_offset(offset_file, offset_ms)
        written_at = time.monotonic()
        lines = lines_after(skewed_child, written_at, 5)
        errors_ms = [abs(observed_offset_s(line) * 1000 - offset_ms) for line in lines]
        print(f"offset {offset_ms:+} ms: worst error {max(errors_ms):.3f} ms")
        assert max(errors_ms) <= TOLERANCE_S * 1000, (offset_ms, lines)
        seen += lines
    # Monotonic time went on undisturbed, and sleep / Event.wait kept their durations.
    steps = [b.monotonic - a.monotonic for a, b in itertools.pairwise(seen)]
    assert all(step > 0 for step in steps)
    assert max(steps) < 0.5
    assert all(0.02 <= line.loop_s < 0.5 for line in seen), [line.loop_s for line in seen]


def test_the_literal_ms_suffix_means_minutes(
    skewed_child: subprocess.Popen[str], offset_file: Path
) -> None:
    """Why the offset text never carries a unit: libfaketime reads any `m` as minutes."""
    write_text(offset_file, "-750ms\n")
    written_at = time.monotonic()
    line = lines_after(skewed_child, written_at, 2)[-1]
    assert abs(observed_offset_s(line) - (-750 * 60)) <= TOLERANCE_S


# -- what the preload costs --------------------------------------------------------------------

RATE_CHILD = """
import time
calls = 200_000
started = time.perf_counter()
for _ in range(calls):
    time.time()
print(calls / (time.perf_counter() - started))
"""

HTTP_CHILD = """
import http.client, sys, time
connection = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
durations = []
for _ in range(1000):
    started = time.perf_counter()
    connection.request("GET", "/")
    connection.getresponse().read()
    durations.append(time.perf_counter() - started)
durations.sort()
print(durations[500] * 1e6, durations[990] * 1e6)
"""


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK adds 40 ms to every request

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _run_child(code: str, environment: dict[str, str], *args: str) -> list[float]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [float(word) for word in result.stdout.split()]


def test_preload_cost(offset_file: Path) -> None:
    plain = {k: v for k, v in os.environ.items() if k != "FAKETIME"}
    preloaded = child_environment(offset_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        host, port = server.server_address[0], server.server_address[1]
        figures = {}
        for name, environment in (("plain", plain), ("preloaded", preloaded)):
            (rate,) = _run_child(RATE_CHILD, environment)
            p50_us, p99_us = _run_child(HTTP_CHILD, environment, str(host), str(port))
            figures[name] = (rate, p50_us, p99_us)
    finally:
        server.shutdown()
        server.server_close()
    for name, (rate, p50_us, p99_us) in figures.items():
        print(
            f"{name}: time.time() {rate:,.0f}/s; HTTP GET p50 {p50_us:.0f} us p99 {p99_us:.0f} us"
        )
    # Loose bounds: the figures are for the report; this only guards against a regression
    # to a build that rereads the file through something much slower than a few syscalls.
    assert figures["preloaded"][0] > 20_000
    assert figures["preloaded"][1] < figures["plain"][1] * 3 + 1000
