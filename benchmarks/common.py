"""What every benchmark writes: its figures, when, where and from which commit."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def python_json(
    arguments: list[str], timeout_s: float, environment: Mapping[str, str] | None = None
) -> Any:
    """Run this Python with `arguments` in a fresh process and parse the JSON it prints:
    a figure measured there is not disturbed by what this process has loaded or allocated."""
    output = subprocess.run(
        [sys.executable, *arguments],
        env=None if environment is None else dict(environment),
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout_s,
    ).stdout
    return json.loads(output)


def percentiles_ms(samples_ns: list[int]) -> dict[str, float]:
    """p50, p90, p99 and max of durations in nanoseconds, in milliseconds."""
    ordered = sorted(samples_ns)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(cut[49] / 1e6, 3),
        "p90_ms": round(cut[89] / 1e6, 3),
        "p99_ms": round(cut[98] / 1e6, 3),
        "max_ms": round(ordered[-1] / 1e6, 3),
        "count": len(ordered),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


PROFILE_VARIABLE = "HFTCHAOS_BENCH_PROFILE"  # set: benchmarks that can also write flame graphs


def profiling_wanted() -> bool:
    return bool(os.environ.get(PROFILE_VARIABLE, "").strip())


def start_py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy recording `pid` into the flame graph `out` for `seconds` (sampling without
    stopping it), or None without py-spy (`pip install hftchaos[bench]`)."""
    beside_python = str(Path(sys.executable).parent)
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=beside_python)
    if spy is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [spy, "record", "-p", str(pid), "-o", str(out), "-d", str(round(seconds))]
    return subprocess.Popen(
        [*command, "-r", "200", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
