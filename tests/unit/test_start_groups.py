"""Start groups: what starts together, in which step, and the groups a loader refuses (with
the file and line)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import TopologyError
from harness.paths import REFERENCE_TOPOLOGY
from harness.topology.loader import load_topology, start_steps

WriteYaml = Callable[..., Path]

GROUPED = """\
name: grouped
services:
  proxy:
    role: toxiproxy
    ports: [api]
    command: [toxiproxy-server]
  store:
    command: [store]
  member:
    members: 3
    group: quorum
    depends_on: [store]
    command: [member, "${member.name}"]
  client:
    depends_on: [member-2]
    command: [client]
"""
# No service waits for itself, but group a waits for b (a1 on b1) and b for a (b2 on a2).
CIRCLE = """\
name: circle
services:
  a1: {group: a, depends_on: [b1], command: [a1]}
  a2: {group: a, command: [a2]}
  b1: {group: b, command: [b1]}
  b2: {group: b, depends_on: [a2], command: [b2]}
"""


def test_a_group_is_one_step_after_its_dependencies_and_before_its_dependents(
    write_yaml: WriteYaml,
) -> None:
    topology = load_topology(write_yaml(GROUPED)).topology
    assert start_steps(topology) == [
        ["proxy"],
        ["store"],
        ["member-1", "member-2", "member-3"],
        ["client"],
    ]


def test_the_reference_engines_start_together() -> None:
    steps = start_steps(load_topology(REFERENCE_TOPOLOGY).topology)
    assert ["n1", "n2", "n3"] in steps
    assert steps[0] == ["toxiproxy"]
    flat = [name for step in steps for name in step]
    assert flat.index("kafka-topics") < flat.index("n1") and flat.index("n3") < flat.index(
        "gateway"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GROUPED.replace("  store:\n", "  store:\n    group: quorum\n"),
            r"grouped\.yaml:\d+.*member-1\.depends_on: store is in the same group \(quorum\)",
        ),
        (
            GROUPED.replace(
                "    command: [toxiproxy-server]", "    group: quorum\n    command: [x]"
            ),
            r"grouped\.yaml:\d+.*services\.proxy\.group: the toxiproxy service starts first",
        ),
        (CIRCLE, r"grouped\.yaml:\d+.*groups depend on each other: group:a -> group:b"),
    ],
    ids=["waits for its own group", "toxiproxy in a group", "groups in a circle"],
)
def test_a_group_that_cannot_start_is_refused_with_its_line(
    write_yaml: WriteYaml, text: str, message: str
) -> None:
    with pytest.raises(TopologyError, match=message):
        load_topology(write_yaml(text, name="grouped.yaml"))
