"""Getting a Docker engine on a machine without systemd: docker.io and debootstrap from apt
when missing, and `dockerd` started in the background when no engine answers.

What Docker itself changes on the host when it starts, and leaves when it stops: the FORWARD
policy becomes DROP, ip_forward is turned on, and its chains (DOCKER, DOCKER-USER,
DOCKER-ISOLATION-STAGE-*) and NAT rules stay in the tables. None of that is the harness's;
the harness adds no host rule of its own on this backend (its fault rules live in the
containers' namespaces), and a run removes every network (and so Docker's per-network rules)
it made. Loopback faults of the local backend are not affected by a DROP policy on FORWARD.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

from harness.backends.docker.engine import engine_client
from harness.errors import RuntimeEnvironmentError
from harness.toolchain import cache_home

PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap"}
ENGINE_START_S = 30.0
# Without the userland proxy a published port is reached through the kernel's NAT; with it
# (Docker's default), every connection from 127.0.0.1 is copied by a `docker-proxy` process,
# one more hop on the path of every latency the harness measures (~0.1 ms per request at
# p99 on an idle machine of this kind; README, On Docker).
DOCKERD = ("dockerd", "--userland-proxy=false")
APT_TIMEOUT_S = 600
Report = Callable[[str], None]


def install_packages(report: Report) -> None:
    """apt-get install what is missing of docker.io and debootstrap (root on Debian only)."""
    missing = [package for command, package in PACKAGES.items() if not shutil.which(command)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeEnvironmentError(
            f"the Docker backend needs {', '.join(missing)}: install them as root "
            f"(apt-get install -y --no-install-recommends {' '.join(missing)})"
        )
    report(f"installing {', '.join(missing)} with apt-get")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        subprocess.run(command, check=True, timeout=APT_TIMEOUT_S, capture_output=True)


def ensure_engine(report: Report) -> Any:
    """A client of a running engine; starts `dockerd` in the background when none answers."""
    try:
        return engine_client()
    except RuntimeEnvironmentError:
        if os.geteuid() != 0 or not shutil.which("dockerd"):
            raise
    log_file = cache_home() / "docker" / "dockerd.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    report(f"no Docker engine answers: starting dockerd (log {log_file})")
    with log_file.open("ab") as log:
        subprocess.Popen(
            list(DOCKERD), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + ENGINE_START_S
    while True:
        try:
            return engine_client()
        except RuntimeEnvironmentError:
            if time.monotonic() > deadline:
                raise RuntimeEnvironmentError(
                    f"dockerd did not answer within {ENGINE_START_S:.0f} s; see {log_file}"
                ) from None
            time.sleep(0.2)
