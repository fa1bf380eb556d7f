"""A command health check: an argument list run on the harness's machine, exit 0 healthy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.backends.health import check_health
from harness.errors import TopologyError
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import PlannedHealth, make_plan

WriteYaml = Callable[..., Path]


def command_check(*command: str) -> PlannedHealth:
    return PlannedHealth(http=None, tcp=None, timeout_s=5, interval_s=0.05, command=list(command))


def test_a_command_that_exits_0_is_healthy_and_any_other_end_is_not(tmp_path: Path) -> None:
    assert check_health(command_check(sys.executable, "-c", "raise SystemExit(0)"))
    assert not check_health(command_check(sys.executable, "-c", "raise SystemExit(3)"))
    assert not check_health(command_check(str(tmp_path / "no-such-program")))
    # Its arguments are arguments: a ';' is no shell's separator.
    marker = tmp_path / "ran"
    assert not check_health(command_check("false", f"; touch {marker}"))
    assert not marker.exists()


SERVICE = """\
name: checked
services:
  server:
    ports: [http]
    command: [server]
    health: {health}
"""


def test_the_commands_placeholders_are_resolved_in_the_plan(
    write_yaml: WriteYaml, fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    file = write_yaml(
        SERVICE.format(health='{command: ["${topology.dir}/ready.sh", "${self.address.http}"]}')
    )
    plan = make_plan(load_topology(file), tmp_path / "run", fake_toolchain)
    health = plan.services["server"].health
    assert health is not None
    port = plan.services["server"].ports["http"]
    assert health.command == [f"{file.parent}/ready.sh", f"127.0.0.1:{port}"]


@pytest.mark.parametrize(
    "health",
    ['{command: [ready], tcp: "127.0.0.1:1"}', "{timeout_s: 3}", "{command: []}"],
    ids=["two probes", "no probe", "empty command"],
)
def test_a_health_check_needs_exactly_one_probe(write_yaml: WriteYaml, health: str) -> None:
    with pytest.raises(TopologyError, match=r"file\.yaml:\d+.*health"):
        load_topology(write_yaml(SERVICE.format(health=health)))
