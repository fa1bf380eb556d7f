"""`hftchaos run --dry-run` prints the resolved timeline, targets and effect checks and
touches nothing: no process, no kernel rule, no file under the results root or the run
registry (compared before and after, by the test's own means)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from harness.cli import main
from harness.paths import REFERENCE_TOPOLOGY

SCENARIO = f"""
name: dry-run-check
topology: {REFERENCE_TOPOLOGY}
load: {{rate_per_s: 50, duration_s: 20}}
abort:
  error_rate: {{above: 0.5, for_s: 2}}
  max_duration_s: 120
faults:
  - {{type: partition, at_s: 3, duration_s: 4, isolate: {{role: engine, select: leader}}}}
  - {{type: clock_skew, at_s: 8, duration_s: 2, target: n2, offset_ms: -750}}
  - {{type: latency, at_s: 11, duration_s: 2, link: gateway-n1, latency_ms: 200}}
"""


def _iptables() -> str:
    if shutil.which("iptables-save") is None:
        return "(no iptables)"
    listing = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False)
    return "\n".join(line for line in listing.stdout.splitlines() if not line.startswith("#"))


def _files(*roots: Path) -> list[str]:
    return sorted(str(path) for root in roots for path in root.rglob("*"))


def _machine(results: Path, registry: Path) -> dict[str, object]:
    return {
        "children": [child.pid for child in psutil.Process().children(recursive=True)],
        "iptables": _iptables(),
        "files": _files(results, registry),
    }


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results, registry = tmp_path / "results", tmp_path / "registry"
    results.mkdir()
    registry.mkdir()
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(results))
    monkeypatch.setenv("HFTCHAOS_RUN_REGISTRY", str(registry))
    scenario = tmp_path / "dry.yaml"
    scenario.write_text(SCENARIO)
    before = _machine(results, registry)
    assert main(["run", "--dry-run", str(scenario)]) == 0
    assert _machine(results, registry) == before
    printed = capsys.readouterr().out
    for expected in (
        "the leader engine at injection, among n1, n2, n3",
        "n2",
        "link gateway-n1 (gateway -> n1)",
        "root and iptables",
        "clock control (libfaketime) on n2",
        "error rate above 50% (over 1 s) for 2 s; the run lasting 120 s",
    ):
        assert expected in printed, expected
    steps = [line.split("│")[1:3] for line in printed.splitlines() if "│ apply" in line]
    assert [(at.strip(), step.strip()) for at, step in steps] == [
        ("3", "apply"),
        ("8", "apply"),
        ("11", "apply"),
    ]


def test_the_comparison_sees_a_file_written_under_the_results_root(tmp_path: Path) -> None:
    """What a run that was not dry would do first (its run directory) is caught."""
    results, registry = tmp_path / "results", tmp_path / "registry"
    results.mkdir()
    registry.mkdir()
    before = _machine(results, registry)
    (results / "dry-run-check").mkdir()
    assert _machine(results, registry) != before


def test_every_fault_kind_has_its_effect_check_described() -> None:
    from harness.faults.effects import CHECK_DESCRIPTIONS
    from harness.faults.registry import fault_kinds

    watches = {getattr(kind.watch_effect, "__name__", "") for kind in fault_kinds().values()}
    assert watches <= set(CHECK_DESCRIPTIONS), watches - set(CHECK_DESCRIPTIONS)
