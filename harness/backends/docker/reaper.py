"""A watchdog that does not depend on the harness surviving (like testcontainers' Ryuk): a
detached process that waits on the harness's pidfd and, if the harness dies while its run's
network still exists, removes every container, volume and network of the run. It ends by
itself once the run is gone (a normal teardown), checking every second.

    python -m harness.backends.docker.reaper RUN HARNESS_PID
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import settings
from harness.backends.docker.leftovers import RUN_LABEL, remove_run

CHECK_S = 1.0


def run_exists(client: Any, run: str) -> bool:
    return bool(client.networks.list(filters={"label": f"{RUN_LABEL}={run}"}))


def start_reaper(run: str) -> None:
    """Detached (own session), without the run marker: it is not a process of the run."""
    environment = {k: v for k, v in os.environ.items() if k != settings.RUN_MARK.variable}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[3]), environment.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    subprocess.Popen(
        [sys.executable, "-m", "harness.backends.docker.reaper", run, str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
        start_new_session=True,
    )


def main(argv: Sequence[str]) -> int:
    from harness.backends.docker.engine import engine_client

    run, harness_pid = argv[0], int(argv[1])
    client = engine_client()
    try:
        handle = os.pidfd_open(harness_pid)
    except ProcessLookupError:
        remove_run(client, run)
        return 0
    waiter = select.poll()
    waiter.register(handle, select.POLLIN)
    while not waiter.poll(CHECK_S * 1000):
        if not run_exists(client, run):
            return 0
    if run_exists(client, run):
        remove_run(client, run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
