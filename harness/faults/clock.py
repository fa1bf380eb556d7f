"""Wall-clock skew for one process through libfaketime's timestamp file.

A service started with `faketime_environment(...)` re-reads the file on every wall-clock call
(FAKETIME_NO_CACHE), so writing a new offset moves its clock at once, while monotonic time,
`time.sleep` and `threading.Event.wait` stay true (FAKETIME_DONT_FAKE_MONOTONIC).

How libfaketime reads the file (src/libfaketime.c, parse_ft_string): a text starting with `+`
or `-` is an offset from true time, parsed with atof() as seconds; then, if the letter `m`
appears anywhere in the text the offset is multiplied by 60, `h` by 3600, `d` by 86400, `y` by
a year. So `-750ms` means 750 *minutes* back, and a trailing `s` is simply ignored. A text
without a sign is taken as an absolute date, and one that does not parse as such makes
libfaketime exit the process: the sign must always be written, `+0` included.

The cost, measured on this machine: with the preload and FAKETIME_NO_CACHE every time.time()
opens, reads and closes the file (about 6 us a call instead of 0.1 us); time.monotonic() is
not affected.
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


def faketime_environment(library: Path, timestamp_file: Path) -> dict[str, str]:
    """Environment that lets the harness move a process's wall clock and nothing else.

    The caller must also make sure no FAKETIME variable is inherited: it would take precedence
    over the file.
    """
    return {
        "LD_PRELOAD": str(library),
        "FAKETIME_TIMESTAMP_FILE": str(timestamp_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
