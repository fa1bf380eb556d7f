"""How one planned service becomes a container: its image, name, labels, network alias,
published ports (127.0.0.1 only, the same number inside and out), mounted directory and
environment (the run marker, and libfaketime with its offset file when the clock is
controlled)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import settings
from harness.backends.docker.leftovers import labels_for
from harness.backends.docker.realization import LIBFAKETIME, PUBLISH_HOST, SERVICE_DIR
from harness.faults.clock import faketime_environment, faketime_offset_text
from harness.run_marker import marker_environment
from harness.store.atomic import write_text_atomically
from harness.topology.plan import Plan, PlannedService

OFFSET_FILE = "faketime.offset"


def container_name(run: str, service: str) -> str:
    return f"hftchaos-{run}-{service}"


def offset_file(service: PlannedService) -> Path:
    """On the host, in the service's mounted directory: a new offset is written next to it
    and renamed over it, which a mount of the directory (not of the file) shows at once."""
    return service.directory / OFFSET_FILE


def environment(plan: Plan, service: PlannedService) -> dict[str, str]:
    env = {
        "PYTHONUNBUFFERED": "1",
        settings.SERVICE.variable: service.name,
        **marker_environment(plan.run_dir),
    }
    if service.clock_control:
        if not offset_file(service).exists():
            write_text_atomically(offset_file(service), faketime_offset_text(0))
        env.update(faketime_environment(Path(LIBFAKETIME), Path(SERVICE_DIR) / OFFSET_FILE))
    return {**env, **service.env}


def create_arguments(
    plan: Plan, service: PlannedService, run: str, network: str, image: str
) -> dict[str, Any]:
    import docker.types

    volumes = {str(service.directory): {"bind": SERVICE_DIR, "mode": "rw"}}
    if service.clock_control and service.image:
        # A user's image has no libfaketime of its own: lend it the provisioned one.
        volumes[str(plan.toolchain.libfaketime)] = {"bind": LIBFAKETIME, "mode": "ro"}
    return {
        "image": image,
        "command": list(service.command),
        "name": container_name(run, service.name),
        "hostname": service.name,
        "labels": labels_for(run, service.name),
        "environment": environment(plan, service),
        "network": network,
        "networking_config": {network: docker.types.EndpointConfig("1.41", aliases=[service.name])},
        "ports": {f"{port}/tcp": (PUBLISH_HOST, port) for port in service.ports.values()},
        "volumes": volumes,
        "working_dir": SERVICE_DIR,
        "init": True,  # signals reach the service even as a process that ignores them as pid 1
        "detach": True,
    }
