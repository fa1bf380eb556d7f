"""Build the harness's images with the Docker SDK, tagged by what went into them.

The tag is `hftchaos/NAME:VERSION-HASH`: the harness version and a SHA-256 over the
Dockerfile, every context file (name, mode and bytes) and the id of the image it starts
from. An image whose tag exists is reused without asking Docker to build anything, so an
unchanged build costs the hashing only (seconds, most of it the Kafka jars).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BackendError
from harness.images.catalog import BASE, BUILDS, ContextItem, ImageBuild, build_order
from harness.paths import REPO_ROOT
from harness.toolchain import Toolchain

IMAGE_REPOSITORY = "hftchaos"
BUILD_LABEL = "hftchaos.build"
SKIPPED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
Report = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImage:
    name: str
    tag: str
    image_id: str
    reused: bool


def harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hftchaos")
    except PackageNotFoundError:
        return "0"


def _files(item: ContextItem) -> Iterator[tuple[str, Path]]:
    if not item.source.exists():
        raise BackendError(
            f"image context item {item.name}: {item.source} does not exist; run `hftchaos setup`"
        )
    if item.source.is_file():
        yield item.name, item.source
        return
    for path in sorted(item.source.rglob("*")):
        relative = path.relative_to(item.source)
        if path.is_file() and not SKIPPED_PARTS & set(relative.parts):
            yield f"{item.name}/{relative.as_posix()}", path


def context_files(build: ImageBuild, toolchain: Toolchain) -> list[tuple[str, Path]]:
    files = [("Dockerfile", REPO_ROOT / build.dockerfile)]
    for item in build.context(toolchain):
        files.extend(_files(item))
    return files


def content_hash(files: list[tuple[str, Path]], base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    for name, path in files:
        digest.update(f"\0{name}\0{path.stat().st_mode & 0o777:o}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def context_tar(files: list[tuple[str, Path]]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path in files:
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0  # the hash, not the file times, decides what is new
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    buffer.seek(0)
    return buffer


def build_image(
    client: Any, build: ImageBuild, base: str, toolchain: Toolchain, report: Report
) -> BuiltImage:
    """Build `build` on the image `base` (a reference), or reuse it when nothing changed."""
    import docker.errors

    base_id = _image_id(client, base)
    files = context_files(build, toolchain)
    tag = f"{IMAGE_REPOSITORY}/{build.name}:{harness_version()}-{content_hash(files, base_id)[:12]}"
    try:
        return BuiltImage(build.name, tag, client.images.get(tag).id, reused=True)
    except docker.errors.ImageNotFound:
        pass
    report(f"building image {tag} ({len(files)} files)")
    try:
        image, _log = client.images.build(
            fileobj=context_tar(files),
            custom_context=True,
            tag=tag,
            buildargs={"BASE": base},
            labels={BUILD_LABEL: build.name},
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as error:
        lines = [
            str(chunk.get("stream", chunk.get("error", ""))).rstrip() for chunk in error.build_log
        ]
        tail = "\n".join(line for line in lines if line)[-2000:]
        raise BackendError(f"building image {build.name} failed: {error.msg}\n{tail}") from None
    return BuiltImage(build.name, tag, image.id, reused=False)


def build_images(
    client: Any, names: set[str], base: str, toolchain: Toolchain, report: Report
) -> dict[str, BuiltImage]:
    """Every build in `names` (and the builds they start from), in order."""
    unknown = sorted(names - set(BUILDS))
    if unknown:
        raise BackendError(f"unknown image build {unknown}: known builds are {sorted(BUILDS)}")
    built: dict[str, BuiltImage] = {}
    for name in build_order(names):
        build = BUILDS[name]
        start_from = base if build.base == BASE else built[build.base].tag
        built[name] = build_image(client, build, start_from, toolchain, report)
    return built


def _image_id(client: Any, reference: str) -> str:
    import docker.errors

    try:
        return str(client.images.get(reference).id)
    except docker.errors.ImageNotFound:
        raise BackendError(
            f"base image {reference} is not there: make it with `hftchaos images base`, or "
            "give an image you have with --base IMAGE (or $HFTCHAOS_BASE_IMAGE)"
        ) from None
