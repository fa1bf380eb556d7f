"""Every process a run starts carries the run's directory in its environment, so that its
survivors can be found by something each of them has, whatever its command line says.

The services, the load generator and anything they start themselves inherit the variable;
`processes_of_run` finds them again (after a SIGKILLed harness, in tests, in a sweep).
"""

from __future__ import annotations

from pathlib import Path

import psutil

from harness import settings

RUN_MARKER_VARIABLE = settings.RUN_MARK.variable


def marker_environment(run_dir: Path) -> dict[str, str]:
    return {RUN_MARKER_VARIABLE: str(run_dir.resolve())}


def processes_of_run(under: Path) -> list[psutil.Process]:
    """Live processes (zombies excluded) whose run marker lies at or below `under`."""
    root = under.resolve()
    found = []
    for process in psutil.process_iter():
        try:
            marker = process.environ().get(RUN_MARKER_VARIABLE)
            if marker is None or process.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if Path(marker).is_relative_to(root):
            found.append(process)
    return found
