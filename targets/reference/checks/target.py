"""The reference system as a target (harness/checks/target.py): its six safety checks, how its
final state is collected and kept, and how a finished run is replayed from its journals.

Its topologies name it with `target: targets.reference.checks:TARGET`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from harness.backends.base import LogAccess
from harness.checks import Check, ReplayReport
from harness.topology.plan import Plan
from targets.reference.checks.collect import (
    collect_final_state,
    load_final_state,
    save_final_state,
)
from targets.reference.checks.deterministic_replay import deterministic_replay
from targets.reference.checks.kafka_gap_free import kafka_gap_free
from targets.reference.checks.model import FinalState
from targets.reference.checks.monotonic_timestamps import monotonic_timestamps
from targets.reference.checks.no_double_fills import no_double_fills
from targets.reference.checks.no_lost_acks import no_lost_acks
from targets.reference.checks.replay import replay_report
from targets.reference.checks.replicas_identical import replicas_identical

# Keyed by the names a scenario lists (harness.scenario.model.CHECKS).
CHECKS: Mapping[str, Check[FinalState]] = MappingProxyType(
    {
        "no_lost_acks": no_lost_acks,
        "no_double_fills": no_double_fills,
        "replicas_identical": replicas_identical,
        "kafka_gap_free": kafka_gap_free,
        "deterministic_replay": deterministic_replay,
        "monotonic_timestamps": monotonic_timestamps,
    }
)
# Replicas, Kafka and the consumer must hold still this long before their state is read.
SETTLE_S = 1.0


@dataclass(frozen=True)
class ReferenceTarget:
    name: str = "reference"
    checks: Mapping[str, Check[FinalState]] = field(default_factory=lambda: CHECKS)
    settle_s: float = SETTLE_S

    def collect(self, plan: Plan, logs: LogAccess | None) -> FinalState:
        return collect_final_state(plan, logs, settle_s=self.settle_s)

    def save_final_state(self, run_dir: Path, final: FinalState) -> None:
        save_final_state(run_dir, final)

    def load_final_state(self, run_dir: Path) -> FinalState:
        return load_final_state(run_dir)

    def replay(self, run_dir: Path) -> ReplayReport:
        return replay_report(run_dir)


TARGET = ReferenceTarget()
