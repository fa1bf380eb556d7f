"""The image builds the harness knows, by the name a topology's `build:` gives.

Each build is a Dockerfile under targets/ and the files its context holds: sources from this
checkout and items of the provisioned toolchain (`hftchaos setup`). The context is assembled
here, file by file, so the content hash covers exactly what goes into the image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.paths import REPO_ROOT
from harness.toolchain import Toolchain

BASE = "base"  # the base image, made by `hftchaos images base` or given with --base


@dataclass(frozen=True)
class ContextItem:
    """A file or directory of the build context: `source` on this machine, `name` in it."""

    name: str
    source: Path


@dataclass(frozen=True)
class ImageBuild:
    name: str
    dockerfile: Path  # relative to the repository root
    base: str  # BASE, or the name of the build this one starts from
    context: Callable[[Toolchain], list[ContextItem]]


# The harness modules the services import (the Kafka launcher finds Java through the
# toolchain), with what those import in turn; tests/unit/test_docker_pieces.py checks that
# this list is closed under imports.
SERVICE_HARNESS_MODULES = ("__init__.py", "errors.py", "settings.py", "toolchain")


def _service_sources(_toolchain: Toolchain) -> list[ContextItem]:
    """The targets package and the harness modules the services import."""
    harness = REPO_ROOT / "harness"
    return [
        ContextItem("src/targets", REPO_ROOT / "targets"),
        *(ContextItem(f"src/harness/{name}", harness / name) for name in SERVICE_HARNESS_MODULES),
    ]


def _reference(toolchain: Toolchain) -> list[ContextItem]:
    from harness.images.wheels import wheels_directory

    return [
        *_service_sources(toolchain),
        ContextItem("libfaketime.so.1", toolchain.libfaketime),
        ContextItem("wheels", wheels_directory()),
    ]


def _kafka(toolchain: Toolchain) -> list[ContextItem]:
    return [ContextItem("kafka-libs", toolchain.kafka_libs)]


def _toxiproxy(toolchain: Toolchain) -> list[ContextItem]:
    return [ContextItem("toxiproxy-server", toolchain.toxiproxy_server)]


BUILDS: dict[str, ImageBuild] = {
    build.name: build
    for build in (
        ImageBuild("reference", Path("targets/reference/Dockerfile"), BASE, _reference),
        ImageBuild(
            "reference-kafka", Path("targets/reference/kafka/Dockerfile"), "reference", _kafka
        ),
        ImageBuild("toxiproxy", Path("targets/reference/toxiproxy/Dockerfile"), BASE, _toxiproxy),
    )
}


def build_order(names: set[str]) -> list[str]:
    """The builds `names` need, each after the build it starts from."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        build = BUILDS[name]
        if build.base != BASE:
            visit(build.base)
        if name not in ordered:
            ordered.append(name)

    for name in sorted(names):
        visit(name)
    return ordered
