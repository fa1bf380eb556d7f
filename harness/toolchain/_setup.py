"""Locate the toolchain (cheap, no installs) or ensure it (install what is missing)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ToolchainError
from harness.toolchain import _faketime, _kafka, _toxiproxy
from harness.toolchain._paths import cache_home, staging_root
from harness.toolchain._process import find_java, find_program

Report = Callable[[str, str], None]
SETUP_HINT = "run `hftchaos setup`"


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of the third-party programs a run needs."""

    toxiproxy_server: Path
    kafka_libs: Path  # a directory of jars: the classpath is `<kafka_libs>/*`
    libfaketime: Path
    java: Path


def locate_toolchain() -> Toolchain:
    """The toolchain as installed now; ToolchainError naming what is missing. Installs nothing."""
    home = cache_home()
    java = find_java()
    libfaketime = _faketime.locate(os.environ)
    missing: list[str] = []

    toxiproxy = _toxiproxy.override(os.environ) or _toxiproxy.cached_path(home)
    if not toxiproxy.is_file():
        missing.append(f"toxiproxy server (no {toxiproxy})")

    kafka_libs = _kafka.override(os.environ)
    if kafka_libs is None:
        kafka_libs = _kafka.cached_path(home)
        if not kafka_libs.is_dir():
            missing.append(f"Kafka jars (no {kafka_libs})")
        elif _kafka.stamp_of(kafka_libs) != _kafka.pom_digest():
            missing.append(f"Kafka jars ({kafka_libs} predates the current pom.xml)")

    if missing:
        raise ToolchainError(f"toolchain not set up: {', '.join(missing)}: {SETUP_HINT}")
    return Toolchain(toxiproxy, kafka_libs, libfaketime, java)


def ensure_toolchain(report: Report | None = None) -> Toolchain:
    """Install whatever is missing or stale into the cache; fast when everything is there."""
    say: Report = report or (lambda _item, _message: None)
    home = cache_home()
    home.mkdir(parents=True, exist_ok=True)
    with _setup_lock(home, say):
        _remove_leftovers(home)
        java = find_java()
        say("java", str(java))
        libfaketime = _faketime.locate(os.environ)
        say("libfaketime", str(libfaketime))

        toxiproxy = _toxiproxy.override(os.environ)
        build_toxiproxy = toxiproxy is None and not _toxiproxy.is_current(
            _toxiproxy.cached_path(home)
        )
        kafka_libs = _kafka.override(os.environ)
        resolve_kafka = kafka_libs is None and not _kafka.is_current(_kafka.cached_path(home))
        # Check every prerequisite before the first long step, not a minute into it.
        if build_toxiproxy:
            find_program("go")
        if resolve_kafka:
            find_program("mvn")

        toxiproxy = _ensure_toxiproxy(home, toxiproxy, build_toxiproxy, say)
        kafka_libs = _ensure_kafka(home, kafka_libs, resolve_kafka, say)
    return Toolchain(toxiproxy, kafka_libs, libfaketime, java)


def _ensure_toxiproxy(home: Path, chosen: Path | None, build: bool, say: Report) -> Path:
    if chosen is not None:
        version = _toxiproxy.server_version(chosen)
        say("toxiproxy", f"{chosen} (version {version}, from {_toxiproxy.OVERRIDE_VARIABLE})")
        return chosen
    cached = _toxiproxy.cached_path(home)
    if not build:
        say("toxiproxy", f"cached at {cached}")
        return cached
    say("toxiproxy", f"building {_toxiproxy.VERSION} with go install (about a minute)")
    started_ns = time.monotonic_ns()
    built = _toxiproxy.build(home)
    say("toxiproxy", f"installed at {built} in {_seconds_since(started_ns)}")
    return built


def _ensure_kafka(home: Path, chosen: Path | None, resolve: bool, say: Report) -> Path:
    if chosen is not None:
        say("kafka", f"{chosen} (from {_kafka.OVERRIDE_VARIABLE})")
        return chosen
    cached = _kafka.cached_path(home)
    if not resolve:
        say("kafka", f"cached at {cached}")
        return cached
    say("kafka", "resolving the broker's jars with Maven (about 20 s)")
    started_ns = time.monotonic_ns()
    resolved = _kafka.resolve(home)
    jars = sum(1 for _ in resolved.glob("*.jar"))
    say("kafka", f"installed {jars} jars at {resolved} in {_seconds_since(started_ns)}")
    return resolved


def _seconds_since(started_ns: int) -> str:
    return f"{(time.monotonic_ns() - started_ns) / 1e9:.1f}s"


@contextlib.contextmanager
def _setup_lock(home: Path, say: Report) -> Iterator[None]:
    """One setup at a time per cache, so staging leftovers are safe to remove."""
    with (home / ".setup.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("setup", f"waiting for another setup using {home}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_leftovers(home: Path) -> None:
    """Staging directories of an interrupted setup (we hold the lock: nobody else is using them)."""
    staging = staging_root(home)
    if staging.is_dir():
        for leftover in staging.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
