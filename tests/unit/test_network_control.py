"""packet_loss and partition act only through the backend's NetworkControl ability: with it
they ask for the resolved services, without it they refuse in one clear sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.fakes import FakeBackend, FakeNetworkControl
from harness.errors import BackendError
from harness.faults.base import FaultContext
from harness.faults.kinds import packet_loss, partition
from harness.faults.kinds.packet_loss import PacketLossFault
from harness.faults.kinds.partition import PartitionFault
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan


def context(
    toolchain: Toolchain, tmp_path: Path, network: FakeNetworkControl | None
) -> FaultContext:
    plan = make_plan(load_topology(REFERENCE_TOPOLOGY), tmp_path, toolchain)
    plan.reservations.release_all()
    backend = FakeBackend(plan)
    backend.up()
    return FaultContext(backend, plan, "run-1", network=network)


def test_packet_loss_asks_the_network_control_for_the_one_target(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    network = FakeNetworkControl()
    fault = PacketLossFault(type="packet_loss", at_s=0, target="n2", percent=30)
    active = packet_loss.inject(fault, 7, context(fake_toolchain, tmp_path, network))
    assert network.calls == [("drop_packets", ("run-1", 7, "n2", 30.0))]
    active.heal()
    assert network.calls[-1] == ("heal", 7)


def test_partition_hands_over_the_resolved_groups(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    network = FakeNetworkControl()
    fault = PartitionFault(type="partition", at_s=0, isolate="n1")
    partition.inject(fault, 3, context(fake_toolchain, tmp_path, network))
    assert network.calls == [("partition", ("run-1", 3, [["n1"], ["n2", "n3"]]))]


def test_without_network_control_the_fault_is_refused_clearly(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    fault = PacketLossFault(type="packet_loss", at_s=0, target="n2", percent=30)
    with pytest.raises(BackendError, match="packet_loss: this backend cannot apply kernel-level"):
        packet_loss.inject(fault, 1, context(fake_toolchain, tmp_path, None))
