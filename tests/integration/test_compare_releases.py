"""The issue's acceptance for comparing releases: a release of the reference engine with slower
Raft elections is flagged as a failover regression by `hftchaos compare` (exit 1), and a release
compared with itself flags nothing (exit 0)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.catalog import open_catalog
from harness.compare.model import Change, compare_runs
from harness.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tests.integration.conftest import TwoReleaseResults

# Six leader-kill runs on two topologies (about 85 s in CI): `nox -s long`.
pytestmark = pytest.mark.long


def hftchaos(results_root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HFTCHAOS_RESULTS": str(results_root), "COLUMNS": "220"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def verdict_of(output: str, scenario: str, metric: str) -> str:
    for line in output.splitlines():
        if scenario in line and f" {metric} " in line:
            return line
    raise AssertionError(f"no row for {scenario} {metric} in:\n{output}")


def test_slower_elections_are_a_failover_regression(
    two_release_results: TwoReleaseResults,
) -> None:
    results = two_release_results
    html = results.results_root / "compare" / "fast-vs-slow.html"
    completed = hftchaos(
        results.results_root, "compare", "--baseline", "fast", "--candidate", "slow"
    )
    assert completed.returncode == EXIT_FAILED, completed.stdout + completed.stderr
    assert "regression" in verdict_of(completed.stdout, results.scenario, "failover_ms")
    assert html.is_file() and "failover_ms" in html.read_text()
    assert html.read_text().count('class="figure"') >= 1

    catalog = open_catalog(results.results_root)
    comparison = compare_runs(
        "fast", "slow", catalog.runs(release="fast"), catalog.runs(release="slow")
    )
    failover = next(m for m in comparison.metrics if m.metric == "failover_ms")
    assert failover.change is Change.REGRESSION, failover
    assert failover.baseline.n == failover.candidate.n == 3


def test_a_release_against_itself_flags_nothing(two_release_results: TwoReleaseResults) -> None:
    results = two_release_results
    completed = hftchaos(
        results.results_root, "compare", "--baseline", "fast", "--candidate", "fast"
    )
    assert completed.returncode == EXIT_OK, completed.stdout + completed.stderr
    assert "regression" not in verdict_of(completed.stdout, results.scenario, "failover_ms")
    assert "no regression" in completed.stdout
    assert (results.results_root / "compare" / "fast-vs-fast.html").is_file()


def test_an_unknown_release_names_the_known_ones(two_release_results: TwoReleaseResults) -> None:
    completed = hftchaos(
        two_release_results.results_root, "compare", "--baseline", "fast", "--candidate", "nope"
    )
    assert completed.returncode == EXIT_BAD_INPUT
    known = completed.stdout.partition("known releases:")[2]
    assert "fast" in known and "slow" in known, completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr
