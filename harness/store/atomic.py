"""The one way the harness writes a file that someone may read while it is written: into a
hidden sibling first, then renamed over the target, so a reader (a report, libfaketime, the
catalog, `hftchaos status`) sees the old file or the new one, never half of one. A write that
fails leaves neither a half-written target nor its partial sibling behind."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(temporary)` and rename the result over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        write(temporary)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda temporary: temporary.write_text(text))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    write_atomically(path, lambda temporary: temporary.write_bytes(data))


def point_link(link: Path, target: Path) -> None:
    """Make `link` a relative symlink to `target`, replacing whatever link was there."""
    temporary = link.with_name(f".{link.name}.new")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(os.path.relpath(target, link.parent))
    temporary.replace(link)
