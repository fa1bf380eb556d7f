"""Backends by name: chosen by `--backend`, else $HFTCHAOS_BACKEND, else the topology's
`backend:`, else `local`. An unknown name is a clear error listing the known ones."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager

from harness import settings
from harness.backends.base import Backend
from harness.errors import InputError
from harness.toolchain import Toolchain
from harness.topology.plan import Plan, Realization, local_realization

BACKEND_VARIABLE = settings.BACKEND.variable
DEFAULT_BACKEND = "local"
Report = Callable[[str], None]
Opener = Callable[[Plan, Report], AbstractContextManager[Backend]]


def _local(plan: Plan, report: Report) -> AbstractContextManager[Backend]:
    from harness.backends.local import LocalBackend

    return LocalBackend(plan, report)


def _docker(plan: Plan, report: Report) -> AbstractContextManager[Backend]:
    from harness.backends.docker.backend import DockerBackend

    return DockerBackend(plan, report)


BACKENDS: dict[str, Opener] = {"local": _local, "docker": _docker}


def realization_for(name: str, toolchain: Toolchain) -> Realization:
    """What the plan's placeholders and addresses mean on backend `name`."""
    if name == "docker":
        from harness.backends.docker.realization import docker_realization

        return docker_realization()
    return local_realization(toolchain)


def chosen_backend(flag: str | None, topology_backend: str | None = None) -> str:
    name = flag or settings.BACKEND.read() or topology_backend or DEFAULT_BACKEND
    if name not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise InputError(f"unknown backend {name[:40]!r}: known backends are {known}")
    return name


def backend_opener(name: str | None) -> Opener:
    return BACKENDS[chosen_backend(name)]


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """`--backend`, declared once for every command that brings a topology up."""
    parser.add_argument(
        "--backend",
        default=None,
        help=f"where the topology runs: {', '.join(sorted(BACKENDS))} (default: "
        f"${BACKEND_VARIABLE}, else the topology's backend:, else {DEFAULT_BACKEND})",
    )
