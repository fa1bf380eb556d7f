"""The results disk: a results directory that cannot be written is refused before anything
starts; one that fills up during a run ends it as aborted, healed.

Both on a real filesystem of their own: a tmpfs mounted for the test (read-only for the
first, 80 MiB for the second, filled by the test while the run is under load and a clock
fault is in force). Needs root, as mounting does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.run_marker import processes_of_run
from harness.store.space import MIB, MIN_FREE_WHILE_RUNNING, free_bytes
from harness.store.summary import RunStatus, load_summary
from tests.integration.small_topology import small_topology

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "disk"
    point.mkdir()
    yield point
    subprocess.run(["umount", "--lazy", str(point)], check=False)


def _mount_tmpfs(point: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)


def _scenario(tmp_path: Path) -> Path:
    scenario = tmp_path / "disk.yaml"
    scenario.write_text(
        "name: disk-fills\n"
        f"topology: {small_topology(tmp_path)}\n"
        "load: {rate_per_s: 20, duration_s: 40, warmup_s: 0}\n"
        "steady_state: {window_s: 1}\n"
        "checks: []\n"
        "faults:\n"
        "  - {type: clock_skew, at_s: 1, duration_s: 30, target: n2, offset_ms: 5000}\n"
    )
    return scenario


def _start(scenario: Path, results: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario)],
        env={**os.environ, "HFTCHAOS_RESULTS": str(results)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_an_unwritable_results_directory_is_refused_before_anything_starts(
    tmp_path: Path, mount: Path
) -> None:
    _mount_tmpfs(mount, "size=80m,ro")
    harness = _start(_scenario(tmp_path), mount / "results")
    output, _ = harness.communicate(timeout=60)
    assert harness.returncode == 3, output
    assert f"the results directory {mount / 'results'} cannot be written" in output, output
    assert "Read-only file system" in output and "Traceback" not in output


def test_a_disk_that_fills_during_the_run_aborts_it_healed(tmp_path: Path, mount: Path) -> None:
    _mount_tmpfs(mount, "size=80m")
    results = mount / "results"
    harness = _start(_scenario(tmp_path), results)
    deadline = time.monotonic() + 120
    while not list(results.rglob("faketime.offset")) or _offset(results) == 0:
        assert harness.poll() is None, harness.communicate()[0]
        assert time.monotonic() < deadline, "the clock fault never took effect"
        time.sleep(0.1)
    # Fill the disk to just under the floor, as another writer would.
    filler = mount / "filler"
    filler.write_bytes(b"\0" * (free_bytes(mount) - MIN_FREE_WHILE_RUNNING + MIB))
    output, _ = harness.communicate(timeout=120)
    assert harness.returncode == 1, output
    run_dir = next(results.glob("disk-fills/*/summary.json")).parent
    summary = load_summary(run_dir)
    assert summary.status is RunStatus.ABORTED
    assert summary.stopped_by is not None and "results disk nearly full" in summary.stopped_by
    assert summary.healing is not None and summary.healing.errors == []
    assert _offset(results) == 0, "the clock skew was not healed"
    journal = (run_dir / "journal.jsonl").read_text().splitlines()
    assert json.loads(journal[-1]) == {"entry": "run_healed", "by": "the harness", "errors": []}
    assert processes_of_run(results) == []


def _offset(results: Path) -> float:
    return max(abs(float(path.read_text())) for path in results.rglob("faketime.offset"))
