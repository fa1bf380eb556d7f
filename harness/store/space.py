"""Room for a run's results: checked before anything starts, watched while it runs.

A run writes logs, the journal and service data while it runs and its history, summary and
report at the end. It is refused when the results directory cannot be written or has less
than MIN_FREE_TO_START; it is aborted (and healed) when the free space falls below
MIN_FREE_WHILE_RUNNING, early enough that what it recorded still fits.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.errors import RuntimeEnvironmentError

MIB = 1 << 20
MIN_FREE_TO_START = 64 * MIB
MIN_FREE_WHILE_RUNNING = 16 * MIB


def check_results_writable(root: Path) -> None:
    """A clear error, before the run starts, for a results directory it could not fill."""
    probe = root / f".hftchaos-write-check-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise RuntimeEnvironmentError(
            f"the results directory {root} cannot be written ({error.strerror or error}); "
            "set HFTCHAOS_RESULTS to a directory that can"
        ) from None
    free = free_bytes(root)
    if free < MIN_FREE_TO_START:
        raise RuntimeEnvironmentError(
            f"the results directory {root} has {free / MIB:.1f} MiB free; a run needs "
            f"{MIN_FREE_TO_START // MIB} MiB"
        )


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def disk_nearly_full(path: Path) -> str | None:
    """Why the run must stop for lack of space, or None."""
    free = free_bytes(path)
    if free >= MIN_FREE_WHILE_RUNNING:
        return None
    return (
        f"results disk nearly full: {free / MIB:.1f} MiB free under {path} (a run stops "
        f"below {MIN_FREE_WHILE_RUNNING // MIB} MiB so that what it recorded still fits)"
    )
