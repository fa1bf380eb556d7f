"""libfaketime, as shipped inside the PyPI package `libfaketime` (a dependency of hftchaos).

Debian's libfaketime 0.9.10 hangs Python services (`threading.Event.wait`), so the harness uses
the build vendored in the wheel. The package is located without importing it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

from harness import settings
from harness.errors import ToolchainError

OVERRIDE_VARIABLE = settings.LIBFAKETIME.variable
LIBRARY_IN_PACKAGE = Path("vendor") / "libfaketime" / "src" / "libfaketime.so.1"


def override(environ: Mapping[str, str]) -> Path | None:
    configured = settings.LIBFAKETIME.read(environ)
    if not configured:
        return None
    library = Path(configured).expanduser()
    if not library.is_file():
        raise ToolchainError(f"{OVERRIDE_VARIABLE}={configured} is not a file")
    return library.resolve()


def from_package() -> Path | None:
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        library = Path(location) / LIBRARY_IN_PACKAGE
        if library.is_file():
            return library
    return None


def locate(environ: Mapping[str, str]) -> Path:
    library = override(environ) or from_package()
    if library is None:
        raise ToolchainError(
            "libfaketime.so.1 not found: pip install 'libfaketime>=3,<4' into this Python "
            f"or set {OVERRIDE_VARIABLE} to a libfaketime.so.1"
        )
    return library
