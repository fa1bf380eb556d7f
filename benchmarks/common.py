"""What every benchmark writes: its figures, when, where and from which commit."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.paths import results_root
from harness.results import git_facts, host_facts
from harness.store.atomic import write_text_atomically


def write_result(name: str, figures: dict[str, Any]) -> Path:
    """results/bench/<name>.json, written whole or not at all."""
    directory = results_root() / "bench"
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "harness": git_facts().model_dump(mode="json"),
        "host": host_facts().model_dump(mode="json"),
        **figures,
    }
    path = directory / f"{name}.json"
    write_text_atomically(path, json.dumps(document, indent=2) + "\n")
    return path


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
