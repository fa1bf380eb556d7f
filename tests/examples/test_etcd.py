"""etcd, a Raft system this project did not write, loaded, read and failed over through its own
HTTP/JSON gateway with no glue code (targets/examples/etcd/): the four scenarios run on the
real system, and over repeated SIGKILLs of the leader the harness's failover instant must
agree with etcd's own "elected leader" log lines (p99 within 5 ms).

Needs `hftchaos setup --example etcd`; run with `nox -s examples`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from harness.metrics import percentile
from harness.runner import run_scenario
from harness.store.summary import load_summary
from harness.toolchain._examples import example, is_current
from harness.toolchain._paths import cache_home
from tests.examples.agreement import repeated_kills

EXAMPLE = Path(__file__).resolve().parents[2] / "targets" / "examples" / "etcd"
TOPOLOGY = EXAMPLE / "topology.yaml"
SCENARIOS = EXAMPLE / "scenarios"
CLUSTER = "etcd"
KILLS = 10
AGREEMENT_MS = 5.0


@pytest.fixture(scope="module", autouse=True)
def _etcd_built() -> None:
    chosen = example("etcd")
    if not is_current(chosen, chosen.binary(cache_home())):
        pytest.fail("etcd is not built: run `hftchaos setup --example etcd`")


def elected_lines_ns(log_file: Path, after_wall_ns: int) -> list[int]:
    """UTC instants (ns) of the member's own "X elected leader X at term N" JSON log lines."""
    found = []
    for line in log_file.read_text(errors="replace").splitlines():
        if '"elected leader' not in line and "elected leader" not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        words = str(entry.get("msg", "")).split()
        # raft.node: <self> elected leader <leader> at term <n>: only the winner's own line.
        if len(words) < 5 or words[2:4] != ["elected", "leader"] or words[1] != words[4]:
            continue
        stamp = datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00"))
        instant = int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000
        if instant >= after_wall_ns:
            found.append(instant)
    return found


def test_failover_agrees_with_etcds_own_election_log(tmp_path: Path) -> None:
    differences, failovers = [], []
    for index, (failover_ms, difference_ms, old, new) in enumerate(
        repeated_kills(TOPOLOGY, tmp_path / "run", CLUSTER, elected_lines_ns, KILLS, AGREEMENT_MS)
    ):
        differences.append(difference_ms)
        failovers.append(failover_ms)
        print(
            f"kill {index + 1}: {old} -> {new}, failover_ms {failover_ms:.1f}, "
            f"harness - log {difference_ms:+.2f} ms"
        )
    magnitudes = [abs(d) for d in differences]
    p99 = percentile(magnitudes, 0.99)
    print(
        f"|harness - log| p50 {percentile(magnitudes, 0.5):.2f} ms, p99 {p99:.2f} ms; "
        f"failover_ms p50 {percentile(failovers, 0.5):.1f}, max {max(failovers):.1f}"
    )
    assert p99 is not None and p99 <= AGREEMENT_MS, differences


def _summary(name: str) -> object:
    result = run_scenario(SCENARIOS / f"{name}.yaml", None, report=print)
    return load_summary(result.run_dir)


def _read_back(summary: object) -> object:
    [check] = [c for c in summary.checks if c.name == "read_back"]  # type: ignore[attr-defined]
    print(f"read_back {check.verdict.value}: {check.explanation}")
    assert check.verdict.value == "valid", check
    assert check.counts["acked"] > 0
    return check


def test_leader_kill_with_load_and_read_back() -> None:
    summary = _summary("leader-kill")
    [failover] = summary.failovers  # type: ignore[attr-defined]
    assert failover.cluster == CLUSTER and failover.failover_ms is not None
    print(f"failover_ms {failover.failover_ms:.1f}, figures {summary.metrics}")  # type: ignore[attr-defined]
    _read_back(summary)


@pytest.mark.parametrize("name", ["leader-isolation", "leader-packet-loss"])
def test_network_faults_on_the_leader_act_or_say_they_did_not(name: str) -> None:
    summary = _summary(name)
    [fault] = summary.faults  # type: ignore[attr-defined]
    print(f"{name}: effect {fault.effect}, verdict {summary.verdict}, warnings {summary.warnings}")  # type: ignore[attr-defined]
    # A kernel fault whose rules matched nothing must not pass.
    if fault.effect is not None and fault.effect.status == "not_effective":
        assert summary.verdict.value != "valid"  # type: ignore[attr-defined]
    _read_back(summary)


def test_clock_skew_on_etcd_is_refused_at_validate_time() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "validate",
            str(SCENARIOS / "follower-clock-skew.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2, completed
    assert "follower-clock-skew.yaml:" in completed.stderr + completed.stdout
    assert "Go program" in completed.stderr + completed.stdout
