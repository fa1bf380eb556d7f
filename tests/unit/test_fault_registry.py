"""Each fault kind is declared once, in its own module: the registry finds every kind the
scenario format accepts, and each declares what the rest of the harness used to hard-code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import typing
from pathlib import Path

from harness.faults.registry import clock_controlled_services, fault_kinds, kind_of
from harness.paths import REFERENCE_TOPOLOGY
from harness.scenario.model import FAULT_TYPES, Scenario
from harness.suite.classes import fault_class_of
from harness.topology.loader import load_topology


def test_every_fault_type_of_the_scenario_format_has_exactly_one_kind() -> None:
    kinds = fault_kinds()
    assert sorted(kinds) == sorted(FAULT_TYPES)
    for name, kind in kinds.items():
        literal = typing.get_args(kind.model.model_fields["type"].annotation)
        assert literal == (name,), (name, literal)


def test_the_kinds_declare_leader_removal_netfilter_and_completion() -> None:
    kinds = fault_kinds()
    assert {n for n, k in kinds.items() if k.removes_leader} == {
        "kill",
        "pause",
        "restart",
        "partition",
    }
    assert {n for n, k in kinds.items() if k.needs_netfilter} == {"packet_loss", "partition"}
    assert {n for n, k in kinds.items() if k.completes_on_injection} == {"restart"}


def _scenario(*faults: dict[str, object]) -> Scenario:
    return Scenario.model_validate(
        {"name": "s", "load": {"rate_per_s": 10, "duration_s": 30}, "faults": list(faults)}
    )


def test_clock_control_goes_only_to_services_a_clock_skew_may_pick() -> None:
    topology = load_topology(REFERENCE_TOPOLOGY).topology
    scenario = _scenario(
        {"type": "clock_skew", "at_s": 1, "duration_s": 1, "offset_ms": 500, "target": "n2"},
        {"type": "kill", "at_s": 5, "target": "n1"},
    )
    assert clock_controlled_services(scenario, topology) == {"n2"}
    by_role = _scenario(
        {
            "type": "clock_skew",
            "at_s": 1,
            "duration_s": 1,
            "offset_ms": 500,
            "target": {"role": "engine", "select": "leader"},
        }
    )
    assert clock_controlled_services(by_role, topology) == {"n1", "n2", "n3"}


def test_each_kind_names_its_incident_class() -> None:
    topology = load_topology(REFERENCE_TOPOLOGY).topology
    scenario = _scenario(
        {"type": "kill", "at_s": 1, "target": {"role": "engine", "select": "leader"}},
        {"type": "pause", "at_s": 2, "duration_s": 1, "target": "kafka"},
        {"type": "latency", "at_s": 4, "duration_s": 1, "latency_ms": 5, "link": "n1-kafka"},
        {"type": "clock_skew", "at_s": 6, "duration_s": 1, "offset_ms": 5, "target": "n1"},
    )
    classes = [fault_class_of(fault, topology) for fault in scenario.faults]
    assert classes == ["leader_loss", "broker", "network", "clock"]
    assert kind_of(scenario.faults[0]).name == "kill"


NEW_KIND = """\
from typing import Literal

from harness.faults.base import SimpleActiveFault
from harness.faults.kind import FaultKind
from harness.scenario.fault_fields import FaultBase, Target


class MeteorFault(FaultBase):
    type: Literal["meteor"]
    target: Target


KIND = FaultKind(
    name="meteor",
    model=MeteorFault,
    inject=lambda fault, key, context: SimpleActiveFault([], {}),
    fault_class=lambda fault, topology: "node_loss",
)
"""


def test_a_new_kind_is_one_module_and_nothing_else(tmp_path: Path) -> None:
    """A kind module placed beside the others (here: on the package's search path, from
    outside the source tree) is accepted by the scenario format with no other change."""
    (tmp_path / "meteor.py").write_text(NEW_KIND)
    program = textwrap.dedent(f"""
        import harness.faults.kinds
        harness.faults.kinds.__path__.append({str(tmp_path)!r})
        from harness.scenario.model import FAULT_TYPES, Scenario
        scenario = Scenario.model_validate({{
            "name": "s", "load": {{"rate_per_s": 10, "duration_s": 30}},
            "faults": [{{"type": "meteor", "at_s": 1, "target": "n1"}}],
        }})
        print("meteor" in FAULT_TYPES, type(scenario.faults[0]).__name__)
    """)
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert completed.stdout.split() == ["True", "MeteorFault"], completed.stderr
