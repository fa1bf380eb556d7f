"""HFTCHAOS_GC_LOG=<ms>: a reference service prints every garbage collection that took at
least that long to stderr, to tell collector pauses from other stalls in the services' logs."""

from __future__ import annotations

import gc
import os
import sys
import time

ENVIRONMENT_VARIABLE = "HFTCHAOS_GC_LOG"


def install(service: str) -> None:
    text = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if not text:
        return
    threshold_ns = int(float(text) * 1_000_000)
    started: dict[int, int] = {}

    def watch(phase: str, info: dict[str, int]) -> None:
        generation = info.get("generation", -1)
        if phase == "start":
            started[generation] = time.monotonic_ns()
            return
        took = time.monotonic_ns() - started.pop(generation, time.monotonic_ns())
        if took >= threshold_ns:
            print(
                f"GC {service} generation={generation} took_ms={took / 1e6:.1f} "
                f"collected={info.get('collected')} mono_ns={time.monotonic_ns()}",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(watch)
