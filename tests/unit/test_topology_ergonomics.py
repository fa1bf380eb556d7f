"""A cluster written once (member templates), ${topology.dir}, typos found with file:line
before anything starts, and the worked example's topology read as a user would write it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import TopologyError
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import check_plan, make_plan

WriteYaml = Callable[..., Path]
REPOSITORY = Path(__file__).resolve().parents[2]

TEMPLATE = """\
name: templated
services:
  node:
    members: 3
    role: store
    host: "127.0.0.${member.index+30}"
    ports: [peer, http]
    command: [run, --id, "${member.index}", --of, "${member.count}", --name, "${member.name}",
              --config, "${topology.dir}/node.conf", --peer, "${services.node-1.address.peer}"]
    raft: {cluster: store, url: "http://${self.address.http}/status", member_id: "${member.index}"}
  client:
    depends_on: [node]
    command: [client]
"""


def test_a_member_template_becomes_its_members(
    write_yaml: WriteYaml, fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    file = write_yaml(TEMPLATE)
    loaded = load_topology(file)
    services = loaded.topology.services
    assert list(services) == ["node-1", "node-2", "node-3", "client"]
    assert [services[f"node-{i}"].host for i in (1, 2, 3)] == [
        "127.0.0.31",
        "127.0.0.32",
        "127.0.0.33",
    ]
    assert services["client"].depends_on == ["node-1", "node-2", "node-3"]
    plan = make_plan(loaded, tmp_path / "run", fake_toolchain)
    command = plan.services["node-2"].command
    assert command[1:7] == ["--id", "2", "--of", "3", "--name", "node-2"]
    assert command[8] == f"{file.resolve().parent}/node.conf"  # ${topology.dir}
    assert command[10] == plan.services["node-1"].address("peer")
    raft = plan.services["node-3"].raft
    assert raft is not None and raft.member_id == "3" and raft.cluster == "store"
    assert plan.raft_clusters() == ["store"]


def test_errors_in_a_template_point_at_its_lines(write_yaml: WriteYaml) -> None:
    with pytest.raises(TopologyError, match=r"file.yaml:4: services.node.members: .*1 to 64"):
        load_topology(write_yaml(TEMPLATE.replace("members: 3", "members: 0")))
    with pytest.raises(TopologyError, match=r"file.yaml:5: services.node-\d.rol: unknown key"):
        load_topology(write_yaml(TEMPLATE.replace("    role: store", "    rol: store")))
    clash = TEMPLATE.replace("  client:\n", "  node-2:\n    command: [x]\n  client:\n")
    with pytest.raises(TopologyError, match="member 'node-2' is also a service of its own"):
        load_topology(write_yaml(clash))


def test_validate_finds_a_placeholder_typo_with_its_line(write_yaml: WriteYaml) -> None:
    loaded = load_topology(write_yaml(TEMPLATE.replace("${topology.dir}", "${topology.dri}")))
    with pytest.raises(TopologyError) as error:
        check_plan(loaded)
    assert "file.yaml:9: services.node-1.command.8: unknown placeholder '${topology.dri}'" in str(
        error.value
    )
    typo = TEMPLATE.replace('member_id: "${member.index}"', 'member_id: "${member.indx}"')
    with pytest.raises(TopologyError, match=r"file.yaml:10: .*raft.member_id: unknown placeholder"):
        check_plan(load_topology(write_yaml(typo)))


def test_a_prometheus_selector_that_cannot_parse_is_refused_at_load(write_yaml: WriteYaml) -> None:
    text = TEMPLATE.replace(
        'url: "http://${self.address.http}/status"',
        "url: 'http://${self.address.http}/metrics', format: prometheus, "
        "role: {path: 'raft leader'}",
    )
    with pytest.raises(TopologyError, match=r"file.yaml:10: services.node-1.raft: .*not a metric"):
        load_topology(write_yaml(text))


def test_the_nats_example_reads_as_written() -> None:
    loaded = load_topology(REPOSITORY / "targets" / "examples" / "nats" / "topology.yaml")
    check_plan(loaded)
    services = loaded.topology.services
    assert sorted(services) == ["nats-1", "nats-2", "nats-3"]
    raft = services["nats-1"].raft
    assert raft is not None and raft.cluster == "meta" and raft.id is not None
