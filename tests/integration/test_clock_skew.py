"""Clock skew through the real libfaketime: a Python child whose wall clock the test moves.

The child prints its wall clock between two readings of its monotonic clock, every ~20 ms.
CLOCK_MONOTONIC is one clock for every process and is not faked, so the child's true wall time
at a line lies between the parent's `time.time() - time.monotonic()` plus those two readings:
each line's offset is known to within an interval measured on the line itself, whatever the
pipe's latency or the machine's load. (NTP slews both clocks alike; only a step of the system
clock during the test would move their difference.)
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.faults.clock import faketime_environment, faketime_offset_text
from harness.toolchain import locate_toolchain

pytestmark = pytest.mark.integration

# The child prints with microsecond resolution: three rounded figures per line, and the
# parent's own reading of wall minus monotonic time besides.
ROUNDING_S = 5e-6

CHILD = """
import sys, threading, time
event = threading.Event()
while True:
    started = time.monotonic()
    event.wait(0.01)
    time.sleep(0.01)
    before = time.monotonic()
    wall = time.time()
    after = time.monotonic()
    print(f"{wall:.6f} {before:.6f} {after:.6f} {before - started:.6f}", flush=True)
"""


@dataclass(frozen=True)
class Line:
    wall: float
    before: float  # the child's monotonic clock just before and just after it read `wall`
    after: float
    loop_s: float  # one Event.wait(0.01) + sleep(0.01), by the monotonic clock
    wall_minus_monotonic: tuple[float, float]  # the parent's, bracketed, when it read the line
    read_at: float  # the parent's monotonic clock once it had the line


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


def wall_minus_monotonic() -> tuple[float, float]:
    before = time.monotonic()
    wall = time.time()
    after = time.monotonic()
    return wall - after, wall - before


def lines_after(child: subprocess.Popen[str], monotonic_from: float, count: int) -> list[Line]:
    """The first `count` lines stamped (by the child's monotonic clock) after `monotonic_from`."""
    assert child.stdout is not None
    found: list[Line] = []
    deadline = time.monotonic() + 5
    while len(found) < count:
        assert time.monotonic() < deadline, "the child stopped printing"
        text = child.stdout.readline()
        assert text, f"the child exited with {child.poll()}"
        wall, before, after, loop_s = (float(word) for word in text.split())
        if before > monotonic_from:
            found.append(
                Line(wall, before, after, loop_s, wall_minus_monotonic(), time.monotonic())
            )
    return found


def offset_bounds_ms(line: Line) -> tuple[float, float]:
    """The lowest and highest offset the child's wall clock can have had at that line."""
    low_difference, high_difference = line.wall_minus_monotonic
    low = line.wall - (high_difference + line.after) - ROUNDING_S
    high = line.wall - (low_difference + line.before) + ROUNDING_S
    return low * 1000, high * 1000


def test_written_offsets_move_the_wall_clock_and_nothing_else(
    skewed_child: subprocess.Popen[str], offset_file: Path
) -> None:
    baseline = lines_after(skewed_child, 0, 5)
    seen: list[Line] = list(baseline)
    for offset_ms in (5000, -750, -5000, 250, 0):
        write_offset(offset_file, offset_ms)
        written_at = time.monotonic()
        lines = lines_after(skewed_child, written_at, 5)
        bounds = [offset_bounds_ms(line) for line in lines]
        widest = max(high - low for low, high in bounds)
        print(f"offset {offset_ms:+} ms: within intervals at most {widest:.3f} ms wide")
        assert all(low <= offset_ms <= high for low, high in bounds), (offset_ms, bounds)
        # Monotonic time is not faked: every line was stamped between the write and our read
        # (a monotonic clock moved by the offset would be seconds ahead or never get here).
        assert all(written_at < line.before <= line.after <= line.read_at for line in lines)
        # Waits kept their durations: a wait converted through the faked wall clock would be
        # cut short, or stretched by about the offset (every loop of the window alike, so the
        # shortest one shows it; only other load makes a loop longer).
        assert all(line.loop_s >= 0.02 for line in lines), [line.loop_s for line in lines]
        if offset_ms:
            shortest_s = min(line.loop_s for line in lines)
            assert shortest_s < min(line.loop_s for line in baseline) + abs(offset_ms) / 2000
        seen += lines
    steps = [b.before - a.before for a, b in itertools.pairwise(seen)]
    assert all(step > 0 for step in steps)


def test_the_literal_ms_suffix_means_minutes(
    skewed_child: subprocess.Popen[str], offset_file: Path
) -> None:
    """Why the offset text never carries a unit: libfaketime reads any `m` as minutes."""
    write_text(offset_file, "-750ms\n")
    written_at = time.monotonic()
    low, high = offset_bounds_ms(lines_after(skewed_child, written_at, 2)[-1])
    assert low <= -750 * 60 * 1000 <= high, (low, high)
