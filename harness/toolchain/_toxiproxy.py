"""Toxiproxy server 2.12.0, built from its Go module (no release downloads on this machine).

`go install` names the binary `server` and stamps no version ("git"); we stamp the real one with
-ldflags so `toxiproxy-server -version` and GET /version say 2.12.0, build into a staging
directory inside the cache and rename the verified binary into place, so an interrupted build
leaves nothing half-written where the harness looks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from harness import settings
from harness.errors import ToolchainError
from harness.toolchain._paths import staging_root
from harness.toolchain._process import find_program, is_executable, run

VERSION = "2.12.0"
MODULE = "github.com/Shopify/toxiproxy/v2"
OVERRIDE_VARIABLE = settings.TOXIPROXY_BIN.variable
VERSION_PREFIX = "toxiproxy-server version "
BUILD_TIMEOUT_S = 20 * 60


def cached_path(home: Path) -> Path:
    return home / "bin" / "toxiproxy-server"


def override(environ: Mapping[str, str]) -> Path | None:
    """The server named by $TOXIPROXY_BIN, checked to be an executable file."""
    configured = settings.TOXIPROXY_BIN.read(environ)
    if not configured:
        return None
    binary = Path(configured).expanduser()
    if not is_executable(binary):
        raise ToolchainError(f"{OVERRIDE_VARIABLE}={configured} is not an executable file")
    return binary.resolve()


def server_version(binary: Path) -> str:
    """What `<binary> -version` reports, e.g. "2.12.0" (a plain `go install` build says "git")."""
    output = run([binary, "-version"], timeout_s=30).strip()
    if not output.startswith(VERSION_PREFIX):
        raise ToolchainError(f"{binary} is not a toxiproxy server: `-version` printed {output!r}")
    return output.removeprefix(VERSION_PREFIX)


def is_current(binary: Path) -> bool:
    return is_executable(binary) and server_version(binary) == VERSION


def build(home: Path) -> Path:
    """`go install` the server into a staging directory, verify it, rename it into the cache."""
    go = find_program("go")
    staging_root(home).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="toxiproxy-", dir=staging_root(home)))
    try:
        run(
            [
                go,
                "install",
                f"-ldflags=-X {MODULE}.Version={VERSION}",
                f"{MODULE}/cmd/server@v{VERSION}",
            ],
            env={**os.environ, "GOBIN": str(staging)},
            timeout_s=BUILD_TIMEOUT_S,
        )
        built = staging / "server"
        reported = server_version(built)
        if reported != VERSION:
            raise ToolchainError(
                f"built toxiproxy server reports version {reported}, not {VERSION}"
            )
        target = cached_path(home)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, target)  # same file system: atomic
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
