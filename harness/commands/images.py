"""`hftchaos images base|build`: the images of the Docker backend.

`base` makes the base image (debootstrap + import, where no registry answers) unless it
exists; `build` builds the harness's images a topology names with `build:` (all of them by
default), reusing every one whose content is unchanged. `--base IMAGE` starts from an image
you have instead (a registry's debian:bookworm-slim, say).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.markup import escape

from harness.consoles import make_console
from harness.errors import EXIT_OK

console = make_console()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("base", "build"), help="what to make")
    parser.add_argument("--base", default=None, help="start from this image instead")
    parser.add_argument("--topology", default=None, help="build only what this topology file names")


def _report(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(message)}")


def run(arguments: argparse.Namespace) -> int:
    from harness.backends.docker.daemon import ensure_engine

    client = ensure_engine(_report)
    if arguments.action == "base":
        from harness.images.base import has_image, make_base_image

        if arguments.base:
            state = "is there" if has_image(client, arguments.base) else "is NOT there"
            _report(f"base image {arguments.base} {state}; nothing to make")
            return EXIT_OK
        make_base_image(client, _report)
        return EXIT_OK
    return build(client, arguments.base, arguments.topology)


def build(client: object, base: str | None, topology: str | None) -> int:
    from harness.images.base import chosen_base
    from harness.images.build import build_images
    from harness.images.catalog import BUILDS
    from harness.toolchain import ensure_toolchain

    names = set(BUILDS)
    if topology is not None:
        from harness.topology.loader import load_topology

        services = load_topology(Path(topology)).topology.services.values()
        names = {s.build for s in services if s.build and not s.image}
    started = time.monotonic()
    built = build_images(client, names, chosen_base(base), ensure_toolchain(), _report)
    for image in built.values():
        state = "reused" if image.reused else "built"
        _report(f"{image.name}: {image.tag} {state} ({image.image_id[:19]})")
    _report(f"images ready in {time.monotonic() - started:.1f}s")
    return EXIT_OK
