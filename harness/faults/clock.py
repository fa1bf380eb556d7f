"""Wall-clock skew for one process through libfaketime's timestamp file.

A service started with `faketime_environment(...)` re-reads the file on every wall-clock call
(FAKETIME_NO_CACHE), so writing a new offset moves its clock at once (OFFSET_APPLIES_WITHIN_S),
while monotonic time, `time.sleep` and `threading.Event.wait` stay true
(FAKETIME_DONT_FAKE_MONOTONIC, FAKETIME_FORCE_MONOTONIC_FIX=0: see `faketime_environment`).

How libfaketime reads the file (src/libfaketime.c, parse_ft_string): a text starting with `+`
or `-` is an offset from true time, parsed with atof() as seconds; then, if the letter `m`
appears anywhere in the text the offset is multiplied by 60, `h` by 3600, `d` by 86400, `y` by
a year. So `-750ms` means 750 *minutes* back, and a trailing `s` is simply ignored. A text
without a sign is taken as an absolute date, and one that does not parse as such makes
libfaketime exit the process: the sign must always be written, `+0` included.

The cost, measured on this machine: with the preload and FAKETIME_NO_CACHE every time.time()
opens, reads and closes the file (about 6 us a call instead of 0.1 us); time.monotonic() is
not affected.

Commit latency, old and new environment (2 CPUs, load ~4 from other work): 3 engines
(`python -m targets.reference.engine`, as in tests/integration/test_engine_cluster.py) on
127.0.0.11-13, all preloaded, offset 0, `--kafka 127.0.0.1:19092` (one broker from
`python -m targets.reference.kafka.broker`) or `--kafka ''`; 1 s after election, 300
sequential POST /commands to the leader on one keep-alive connection, timed by the client:

    p50/p90/p99 ms, two runs each      Kafka on                  Kafka off
    no preload                         3.5/7.9/14, 2.4/3.8/6.4   2.3/4.7/7.8, 1.4/1.6/4.0
    old: NO_CACHE+DONT_FAKE_MONOTONIC  14/74/164, 14/61/127      3.7/49/107, 2.1/53/111
    new: ... + FORCE_MONOTONIC_FIX=0   2.3/4.1/14, 2.6/4.2/7.5   4.1/8.4/25, 1.5/1.9/4.9
    new, CACHE_DURATION=0 not NO_CACHE 2.3/3.6/6.1, 1.7/2.9/5.2  4.2/13/34, 1.2/3.4/10

so the fix removes the whole penalty, and caching the file (which delays the offset by up to a
second) buys nothing measurable on top: the file stays uncached. Kafka was not the cause.
"""

from __future__ import annotations

import math
from pathlib import Path

from harness.errors import BackendError


def faketime_offset_text(offset_ms: float) -> str:
    """The FAKETIME_TIMESTAMP_FILE text for a wall clock `offset_ms` from true time (0 heals).

    Signed seconds with microsecond resolution and no unit letter, e.g. `-0.750000`: the
    format libfaketime itself writes (`%+f`) when a faked process sets its clock.
    """
    if not math.isfinite(offset_ms):
        raise BackendError(
            f"a clock offset must be a finite number of milliseconds, not {offset_ms}"
        )
    seconds = round(offset_ms / 1000, 6)
    if seconds == 0:
        seconds = 0.0  # never "-0.000000"
    return f"{seconds:+.6f}\n"


OFFSET_FILE_NAME = "faketime.offset"


def offset_file(service_directory: Path) -> Path:
    """Where a clock-controlled service's libfaketime reads its offset from."""
    return service_directory / OFFSET_FILE_NAME


# A new offset is in force from the process's next wall-clock read after the file is replaced:
# the file is not cached (FAKETIME_NO_CACHE), so there is no delay to wait out.
OFFSET_APPLIES_WITHIN_S = 0.0


def faketime_environment(library: Path, timestamp_file: Path) -> dict[str, str]:
    """Environment that lets the harness move a process's wall clock and nothing else.

    - FAKETIME_TIMESTAMP_FILE + FAKETIME_NO_CACHE: the offset is read from the file on every
      faked call, so a write applies at once (OFFSET_APPLIES_WITHIN_S).
    - FAKETIME_DONT_FAKE_MONOTONIC: CLOCK_MONOTONIC (time.monotonic, Raft timers) stays true.
    - FAKETIME_FORCE_MONOTONIC_FIX=0: without it a preloaded CPython busy-spins on the GIL.
      libfaketime wraps pthread_cond_timedwait and, for a condition variable on CLOCK_MONOTONIC
      (CPython's GIL uses one for its 5 ms switch interval), recomputes the deadline from
      fake_clock_gettime(CLOCK_MONOTONIC), which in offset mode returns *wall-clock* time even
      under DONT_FAKE_MONOTONIC. On glibc 2.36 the "forced monotonic fix" is on by default and
      then passes real-monotonic + (deadline - wall time), decades in the past: every timed
      wait returns ETIMEDOUT at once (measured: a 50 ms wait takes 0.0 ms). A thread waiting
      for the GIL loops and forces the holder to drop it at once, rereading the file each turn;
      the more threads want the GIL (the leader's HTTP handlers, Raft tick thread, Kafka
      publisher), the worse, hence slow commits and late heartbeats on the leader. With the fix
      off the deadline becomes fake + (deadline - fake) = the caller's own deadline, which is
      right because glibc waits on the true monotonic clock; CLOCK_REALTIME condition
      variables are not touched by this switch and keep their offset conversion.

    The caller must also make sure no FAKETIME variable is inherited: it would take precedence
    over the file.
    """
    return {
        "LD_PRELOAD": str(library),
        "FAKETIME_TIMESTAMP_FILE": str(timestamp_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_FORCE_MONOTONIC_FIX": "0",
    }
