"""The base image every harness build starts from.

Where a registry answers, any Debian bookworm image will do (`--base debian:bookworm-slim`).
Where none does (this project's machines), `hftchaos images base` makes one: a minimal Debian
from `debootstrap --variant=minbase`, without its package caches, imported as a one-layer
image. That needs root and debootstrap; without them it says so and what to do instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import settings
from harness.errors import RuntimeEnvironmentError
from harness.paths import remove_tree
from harness.toolchain import cache_home

BASE_IMAGE = settings.BASE_IMAGE.default
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_TIMEOUT_S = 900
Report = Callable[[str], None]


def chosen_base(flag: str | None) -> str:
    """--base, else $HFTCHAOS_BASE_IMAGE, else the image `hftchaos images base` makes."""
    return flag or settings.BASE_IMAGE.value()


def has_image(client: Any, reference: str) -> bool:
    import docker.errors

    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def make_base_image(client: Any, report: Report) -> str:
    """BASE_IMAGE, made with debootstrap + import unless it exists already."""
    if has_image(client, BASE_IMAGE):
        report(f"base image {BASE_IMAGE} is there already")
        return BASE_IMAGE
    _require_debootstrap()
    staging = cache_home() / "tmp" / f"base-{os.getpid()}"
    try:
        rootfs = staging / "rootfs"
        started = time.monotonic()
        _debootstrap(rootfs)
        report(f"debootstrap {SUITE} done in {time.monotonic() - started:.0f}s")
        archive = staging / "rootfs.tar"
        _pack(rootfs, archive)
        repository, tag = BASE_IMAGE.split(":")
        client.api.import_image_from_file(str(archive), repository=repository, tag=tag)
    finally:
        remove_tree(staging, cache_home() / "tmp")
    report(f"imported {BASE_IMAGE} in {time.monotonic() - started:.0f}s in all")
    return BASE_IMAGE


def _require_debootstrap() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (debootstrap mounts and chroots)")
    if shutil.which("debootstrap") is None:
        missing.append("debootstrap (apt-get install debootstrap)")
    if missing:
        raise RuntimeEnvironmentError(
            f"making the base image needs {' and '.join(missing)}; where a registry answers, "
            "give a Debian bookworm image instead: --base debian:bookworm-slim"
        )


def _debootstrap(rootfs: Path) -> None:
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    command = ["debootstrap", "--variant=minbase", SUITE, str(rootfs), MIRROR]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeEnvironmentError(
            f"debootstrap did not finish within {DEBOOTSTRAP_TIMEOUT_S} s (is {MIRROR} reachable?)"
        ) from None
    if result.returncode != 0:
        tail = " ".join((result.stdout + result.stderr).split()[-40:])
        raise RuntimeEnvironmentError(f"debootstrap failed (exit {result.returncode}): {tail}")
    # The package caches are a third of the tree and no use in an image.
    for cache in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
        for entry in cache.glob("*"):
            if entry.is_file():
                entry.unlink()


def _pack(rootfs: Path, archive: Path) -> None:
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            if entry.name not in ("proc", "sys", "dev"):
                tar.add(str(entry), arcname=entry.name)
        for empty in ("proc", "sys", "dev"):
            info = tarfile.TarInfo(empty)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
