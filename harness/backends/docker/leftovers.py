"""Everything the Docker backend creates carries labels: the run, the service, and the pid
and host of the harness that made it. A harness that was SIGKILLed leaves its containers and
network behind; the next Docker run (and `hftchaos sweep`) finds them by label and removes
those whose harness is no longer alive. Inside a removed container's namespace its kernel
rules go too, so the host keeps no rule of any run."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import psutil

RUN_LABEL = "hftchaos.run"
SERVICE_LABEL = "hftchaos.service"
HARNESS_PID_LABEL = "hftchaos.harness-pid"
HARNESS_HOST_LABEL = "hftchaos.harness-host"


def labels_for(run: str, service: str | None = None) -> dict[str, str]:
    labels = {
        RUN_LABEL: run,
        HARNESS_PID_LABEL: str(os.getpid()),
        HARNESS_HOST_LABEL: socket.gethostname(),
    }
    if service is not None:
        labels[SERVICE_LABEL] = service
    return labels


def _harness_alive(labels: dict[str, str]) -> bool:
    if labels.get(HARNESS_HOST_LABEL) != socket.gethostname():
        return True  # another machine's harness: not ours to judge
    try:
        return psutil.pid_exists(int(labels.get(HARNESS_PID_LABEL, "0")))
    except ValueError:
        return False


def remove_run(client: Any, run: str) -> tuple[int, int]:
    """Remove every container (with its anonymous volumes) and network of `run`."""
    import docker.errors

    containers = client.containers.list(
        all=True, ignore_removed=True, filters={"label": f"{RUN_LABEL}={run}"}
    )
    for container in containers:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    networks = client.networks.list(filters={"label": f"{RUN_LABEL}={run}"})
    for network in networks:
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    return len(containers), len(networks)


def dead_runs(client: Any) -> set[str]:
    """Runs with a container or network left by a harness that is gone."""
    found = set()
    for item in [
        *client.containers.list(all=True, ignore_removed=True, filters={"label": RUN_LABEL}),
        *client.networks.list(filters={"label": RUN_LABEL}),
    ]:
        labels = item.attrs.get("Labels") or item.attrs.get("Config", {}).get("Labels") or {}
        if not _harness_alive(labels):
            found.add(labels[RUN_LABEL])
    return found


def sweep_dead_runs(client: Any) -> list[str]:
    runs = sorted(dead_runs(client))
    for run in runs:
        remove_run(client, run)
    return runs


def sweep_engine() -> list[str]:
    """The dead runs removed from this machine's engine; none when Docker is not installed
    or no engine answers (then nothing of a run can be running in it either)."""
    import shutil

    from harness.backends.docker.engine import engine_client
    from harness.errors import RuntimeEnvironmentError

    if shutil.which("dockerd") is None:
        return []
    try:
        client = engine_client()
    except RuntimeEnvironmentError:
        return []
    return sweep_dead_runs(client)
