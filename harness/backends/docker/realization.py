"""What a topology means on the Docker backend: paths inside the harness's images, services
reached by name on the run's own network, and from the harness through ports that Docker
publishes on 127.0.0.1 (with the same number inside and out, so a port has one number)."""

from __future__ import annotations

from pathlib import Path

from harness.topology.plan import Realization

PUBLISH_HOST = "127.0.0.1"
PYTHON = "/opt/hftchaos/venv/bin/python"
SERVICE_DIR = "/srv/hftchaos/service"  # the service's host directory is mounted here
LIBFAKETIME = "/opt/hftchaos/libfaketime.so.1"
TOOLCHAIN = {
    "toxiproxy_server": "/usr/local/bin/toxiproxy-server",
    "kafka_libs": "/opt/kafka/libs",
    "libfaketime": LIBFAKETIME,
    "java": "/usr/bin/java",
}


def _by_name(name: str, _host: str) -> str:
    return name  # the container's network alias


def _published(_name: str, _host: str) -> str:
    return PUBLISH_HOST


def _no_run_dir(_run_dir: Path) -> None:
    return None  # the run directory is on the host; a container sees only its own


def _mounted_dir(_directory: Path) -> str:
    return SERVICE_DIR


def docker_realization() -> Realization:
    return Realization(
        backend="docker",
        python=PYTHON,
        toolchain=dict(TOOLCHAIN),
        run_dir=_no_run_dir,
        service_dir=_mounted_dir,
        network_host=_by_name,
        harness_host=_published,
    )
