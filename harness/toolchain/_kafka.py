"""Kafka broker jars, resolved by Maven from targets/reference/kafka/pom.xml.

The jars are resolved into a staging directory inside the cache, stamped with the POM's SHA-256
and renamed into `<cache>/kafka/libs`; a changed POM no longer matches the stamp and is
resolved again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from harness import settings
from harness.errors import ToolchainError
from harness.toolchain._paths import staging_root
from harness.toolchain._process import find_program, run

OVERRIDE_VARIABLE = settings.KAFKA_HOME.variable
STAMP_FILE = ".pom.sha256"
BROKER_JAR_GLOB = "kafka_2.13-*.jar"
RESOLVE_TIMEOUT_S = 20 * 60


def pom_text() -> bytes:
    return resources.files("targets.reference.kafka").joinpath("pom.xml").read_bytes()


def pom_digest(pom: bytes | None = None) -> str:
    return hashlib.sha256(pom_text() if pom is None else pom).hexdigest()


def cached_path(home: Path) -> Path:
    return home / "kafka" / "libs"


def override(environ: Mapping[str, str]) -> Path | None:
    """$KAFKA_HOME/libs of an unpacked Kafka distribution, checked to hold the broker jar."""
    configured = settings.KAFKA_HOME.read(environ)
    if not configured:
        return None
    libs = Path(configured).expanduser().resolve() / "libs"
    if not any(libs.glob(BROKER_JAR_GLOB)):
        raise ToolchainError(
            f"{OVERRIDE_VARIABLE}={configured} has no libs/{BROKER_JAR_GLOB}: "
            "point it at an unpacked Kafka distribution or unset it"
        )
    return libs


def stamp_of(libs: Path) -> str | None:
    try:
        return (libs / STAMP_FILE).read_text(encoding="ascii").strip()
    except OSError:
        return None


def is_current(libs: Path) -> bool:
    return stamp_of(libs) == pom_digest() and any(libs.glob(BROKER_JAR_GLOB))


def resolve(home: Path) -> Path:
    """Resolve the POM's jars with Maven into staging, then rename them into the cache."""
    find_program("java")  # Maven needs it; say so rather than let mvn fail obscurely
    mvn = find_program("mvn")
    staging_root(home).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="kafka-", dir=staging_root(home)))
    try:
        pom = pom_text()
        # A copy of the POM, so Maven writes nothing into the source tree.
        (staging / "pom.xml").write_bytes(pom)
        libs = staging / "libs"
        run(
            [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                staging / "pom.xml",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}",
                "-DincludeScope=runtime",
            ],
            timeout_s=RESOLVE_TIMEOUT_S,
        )
        if not any(libs.glob(BROKER_JAR_GLOB)):
            raise ToolchainError(f"Maven resolved no {BROKER_JAR_GLOB} from the Kafka POM")
        (libs / STAMP_FILE).write_text(pom_digest(pom) + "\n", encoding="ascii")
        target = cached_path(home)
        _move_into_place(libs, target, staging)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(new: Path, target: Path, staging: Path) -> None:
    """Replace directory `target` by `new`; the old one goes into staging and is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        # rename() cannot replace a non-empty directory: move the old one aside first.
        os.rename(target, staging / "previous-libs")
    os.rename(new, target)
