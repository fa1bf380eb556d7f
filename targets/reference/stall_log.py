"""HFTCHAOS_STALL_LOG=<ms>: an engine node prints every gap of at least that long between two
of its Raft ticks to stderr. A tick normally follows the last within the tick period plus the
entries it applied (a few ms); a longer gap is a stall of the node itself (a fork, a collector
pause, no CPU), which its followers see as a silent leader. Read beside the GC and CHECKPOINT
lines, it tells which one it was."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

ENVIRONMENT_VARIABLE = "HFTCHAOS_STALL_LOG"


def tick_watch(service: str) -> Callable[[], None] | None:
    """A function to call at every tick, or None when the variable is not set."""
    text = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if not text:
        return None
    threshold_ns = int(float(text) * 1_000_000)
    last_ns = [0]

    def tick() -> None:
        now_ns = time.monotonic_ns()
        gap_ns, last_ns[0] = now_ns - last_ns[0], now_ns
        if gap_ns >= threshold_ns and gap_ns != now_ns:
            print(
                f"STALL {service} tick_gap_ms={gap_ns / 1e6:.1f} mono_ns={now_ns}",
                file=sys.stderr,
                flush=True,
            )

    return tick
