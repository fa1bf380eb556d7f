"""NATS JetStream, a Raft system this project did not write, read through its own /raftz with
no glue code: over repeated SIGKILLs of the meta leader, the harness's failover instant must
agree with the system's own "Switching to leader" log line (p99 within 5 ms), and the same
run pipeline (`hftchaos run`) must measure a leader kill of it end to end.

Needs `hftchaos setup --example nats`; run with `nox -s examples`.
"""

from __future__ import annotations

import calendar
import re
from pathlib import Path

import pytest

from harness.metrics import percentile
from harness.runner import run_scenario
from harness.store.summary import load_summary
from harness.toolchain._examples import example, is_current
from harness.toolchain._paths import cache_home
from tests.examples.agreement import repeated_kills

EXAMPLE = Path(__file__).resolve().parents[2] / "targets" / "examples" / "nats"
TOPOLOGY = EXAMPLE / "topology.yaml"
CLUSTER = "meta"
KILLS = 10
AGREEMENT_MS = 5.0
# [pid] 2026/12/01 12:40:00.123456 [DBG] RAFT [yrzKKRBu - _meta_] Switching to leader
SWITCH = re.compile(
    r"^(?:\[\d+\] )?(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) "
    r"\[DBG\] RAFT \[\w+ - _meta_\] Switching to leader"
)


@pytest.fixture(scope="module", autouse=True)
def _nats_built() -> None:
    chosen = example("nats")
    if not is_current(chosen, chosen.binary(cache_home())):
        pytest.fail("nats-server is not built: run `hftchaos setup --example nats`")


def switch_lines_ns(log_file: Path, after_wall_ns: int) -> list[int]:
    """The UTC instants (ns since the epoch) of the log's "Switching to leader" lines."""
    found = []
    for line in log_file.read_text(errors="replace").splitlines():
        match = SWITCH.match(line)
        if match is None:
            continue
        year, month, day, hour, minute, second, micros = (int(g) for g in match.groups())
        epoch_s = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        instant = epoch_s * 1_000_000_000 + micros * 1000
        if instant >= after_wall_ns:
            found.append(instant)
    return found


def test_failover_agrees_with_the_systems_own_election_log(tmp_path: Path) -> None:
    differences = []
    kills = repeated_kills(TOPOLOGY, tmp_path / "run", CLUSTER, switch_lines_ns, KILLS)
    for index, (failover_ms, difference_ms, old, new) in enumerate(kills):
        differences.append(difference_ms)
        print(
            f"kill {index + 1}: {old} -> {new}, failover_ms {failover_ms:.1f}, "
            f"harness - log {difference_ms:+.2f} ms"
        )
    magnitudes = [abs(d) for d in differences]
    p99 = percentile(magnitudes, 0.99)
    print(f"|harness - log| p50 {percentile(magnitudes, 0.5):.2f} ms, p99 {p99:.2f} ms")
    assert p99 is not None and p99 <= AGREEMENT_MS, differences


def test_leader_kill_scenario_runs_through_the_pipeline() -> None:
    result = run_scenario(EXAMPLE / "scenarios" / "leader-kill.yaml", None, report=print)
    summary = load_summary(result.run_dir)
    [failover] = summary.failovers
    assert failover.cluster == CLUSTER and failover.new_leader is not None
    assert failover.failover_ms is not None and failover.failover_ms > 0
    assert failover.error_bound_ms is not None
    losses = [loss for loss in summary.leadership_losses if loss.cluster == CLUSTER]
    assert losses and losses[0].leaderless_ms is not None
    [timing] = summary.status_timing
    assert timing.cluster == CLUSTER and timing.samples > 0
    print(
        f"failover_ms {failover.failover_ms:.1f} (bound {failover.error_bound_ms} ms), "
        f"leaderless_ms {losses[0].leaderless_ms}, status p99 {timing.round_trip_p99_ms} ms"
    )
