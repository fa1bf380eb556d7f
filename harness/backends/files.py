"""Small helpers the backends share for their LogAccess and ResourceStats abilities."""

from __future__ import annotations

from pathlib import Path

import psutil

from harness.errors import BackendError


def inside(directory: Path, relative: str) -> Path:
    """`relative` under `directory`, refusing anything that would leave it (`..`, absolute)."""
    root = directory.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise BackendError(f"{relative!r} is not inside the service's directory")
    return path


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its children, None if it is gone."""
    try:
        process = psutil.Process(pid)
        total = process.cpu_times().user + process.cpu_times().system
        for child in process.children(recursive=True):
            times = child.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        return None
    return total
