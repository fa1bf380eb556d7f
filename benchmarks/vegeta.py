"""Vegeta, the open-loop HTTP load generator the harness's load path is measured against.

Built from its Go module at a pinned version into the toolchain cache (`bin/vegeta`), the way
`hftchaos setup` builds Toxiproxy: into a staging directory, verified, renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ToolchainError
from harness.toolchain._paths import cache_home, staging_root
from harness.toolchain._process import find_program, is_executable, run

VERSION = "v12.13.0"
MODULE = "github.com/tsenart/vegeta/v12"
BUILD_TIMEOUT_S = 15 * 60
NS_PER_MS = 1e6


@dataclass(frozen=True, slots=True)
class AttackResult:
    rate_per_s: float  # requests sent per second of the attack (Vegeta's "rate")
    throughput_per_s: float  # successful replies per second, waiting for the last included
    requests: int
    success_ratio: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: list[str]


def vegeta_version(binary: Path) -> str:
    for line in run([binary, "-version"], timeout_s=30).splitlines():
        if line.startswith("Version:"):
            return line.removeprefix("Version:").strip()
    return ""


def ensure_vegeta() -> Path:
    """bin/vegeta in the toolchain cache, built with `go install` when missing or stale."""
    target = cache_home() / "bin" / "vegeta"
    if is_executable(target) and vegeta_version(target) == VERSION:
        return target
    go = find_program("go")
    staging_root(cache_home()).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="vegeta-", dir=staging_root(cache_home())))
    try:
        run(
            [go, "install", f"-ldflags=-X main.Version={VERSION}", f"{MODULE}@{VERSION}"],
            env={**os.environ, "GOBIN": str(staging)},
            timeout_s=BUILD_TIMEOUT_S,
        )
        built = staging / "vegeta"
        if vegeta_version(built) != VERSION:
            raise ToolchainError(f"built vegeta does not report version {VERSION}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def attack(binary: Path, url: str, body: str, rate_per_s: int, duration_s: float) -> AttackResult:
    """One open-loop attack of POSTs with `body`, and Vegeta's own report of it."""
    with tempfile.TemporaryDirectory(prefix="hftchaos-vegeta-") as scratch:
        body_file, targets, results = (Path(scratch) / name for name in ("body", "t", "r"))
        body_file.write_text(body)
        targets.write_text(f"POST {url}\nContent-Type: application/json\n@{body_file}\n")
        run(
            [
                binary,
                "attack",
                f"-rate={rate_per_s}/1s",
                f"-duration={duration_s}s",
                f"-targets={targets}",
                f"-output={results}",
                "-timeout=5s",
            ],
            timeout_s=duration_s + 60,
        )
        report = json.loads(run([binary, "report", "-type=json", str(results)], timeout_s=120))
    return parse_report(report)


def parse_report(report: dict[str, Any]) -> AttackResult:
    latencies = report["latencies"]
    return AttackResult(
        rate_per_s=round(float(report["rate"]), 1),
        throughput_per_s=round(float(report["throughput"]), 1),
        requests=int(report["requests"]),
        success_ratio=float(report["success"]),
        p50_ms=round(latencies["50th"] / NS_PER_MS, 3),
        p99_ms=round(latencies["99th"] / NS_PER_MS, 3),
        max_ms=round(latencies["max"] / NS_PER_MS, 3),
        errors=list(report.get("errors") or [])[:5],
    )
