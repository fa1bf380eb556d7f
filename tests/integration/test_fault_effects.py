"""Every fault kind, injected for real through the timeline, is seen acting, and a fault that
cannot act is judged not effective, never effective.

Two peers (programs/chatter.py) on their own loopback addresses talk to each other directly
and through a Toxiproxy link, all the time. In the `bound` topology their connections come
from their own addresses; in the `unbound` one from 127.0.0.1, as many real programs' do, so
kernel rules on their addresses see nothing. Run with `--noop-fault TYPE` to see that each
`effective` assertion fails when the fault does nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from harness.backends.local import LocalBackend
from harness.errors import ScenarioError
from harness.faults import netfilter
from harness.faults.base import FaultContext, HealRegistry
from harness.faults.effects import EFFECT_KEY
from harness.faults.effects_sources import source_warnings
from harness.faults.journal import FaultJournal
from harness.faults.stale import register_run, unregister_run
from harness.records import FaultEvent
from harness.scenario.loader import load_scenario
from harness.scenario.model import Fault
from harness.timeline import Timeline
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan
from harness.toxiproxy import ToxiproxyClient

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="kernel faults need root"),
]

PROGRAMS = Path(__file__).parent / "programs"
HOSTS = {True: ("127.0.0.41", "127.0.0.42"), False: ("127.0.0.43", "127.0.0.44")}  # by bound
FAULT_WINDOW_S = 1.0  # long enough for dozens of the peers' 20 ms messages


def _peer(name: str, host: str, other: str, bound: bool) -> str:
    """Bound: listens on and connects from its own address. Unbound: like many programs, it
    listens on every address and reaches its peer at 127.0.0.1:port, whatever the topology
    says its host is, so no packet of theirs carries the addresses kernel rules name."""
    if bound:
        listen, peer = "${self.address.tcp}", f"${{services.{other}.address.tcp}}"
        # And through Toxiproxy, for the link faults.
        extra = f', --peer, "${{links.{name}-{other}.address}}", --source, "{host}"'
    else:
        listen, peer = "0.0.0.0:${self.port.tcp}", f"127.0.0.1:${{services.{other}.port.tcp}}"
        extra = ""
    return f"""\
  {name}:
    role: peer
    host: {host}
    ports: [tcp, http]
    clock_control: true
    command: ["${{python}}", "{PROGRAMS / "chatter.py"}", --listen, "{listen}",
              --http, "${{self.address.http}}", --peer, "{peer}"{extra}, --lifetime-s, "300"]
    health: {{tcp: "${{self.address.tcp}}", timeout_s: 10}}
"""


TOXIPROXY = """\
  toxiproxy:
    role: toxiproxy
    ports: [api]
    command: ["${toolchain.toxiproxy_server}", -host, "${self.host}", -port, "${self.port.api}"]
    env: {LOG_LEVEL: warn}
    health: {http: "http://${self.address.api}/version", timeout_s: 15}
"""
LINKS = "links:\n  a-b: {from: a, to: b, port: tcp}\n  b-a: {from: b, to: a, port: tcp}\n"


def _topology(bound: bool) -> str:
    """Only the bound peers have links: a proxy forwards to a peer's own address, and that
    traffic alone would make a kernel fault on the unbound ones partly effective."""
    return (
        f"name: effects{'bound' if bound else 'unbound'}\nservices:\n"
        + (TOXIPROXY if bound else "")
        + _peer("a", HOSTS[bound][0], "b", bound)
        + _peer("b", HOSTS[bound][1], "a", bound)
        + (LINKS if bound else "")
    )


def _backend(tmp: Path, text: str) -> Iterator[LocalBackend]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "topology.yaml").write_text(text)
    plan = make_plan(load_topology(tmp / "topology.yaml"), tmp / "run", locate_toolchain())
    with LocalBackend(plan) as backend:
        backend.up()
        time.sleep(0.5)  # the peers connect to each other
        yield backend


@pytest.fixture(scope="module")
def bound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    yield from _backend(tmp_path_factory.mktemp("bound"), _topology(bound=True))


@pytest.fixture(scope="module")
def unbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    yield from _backend(tmp_path_factory.mktemp("unbound"), _topology(bound=False))


_runs = iter(range(10_000))


def apply_and_heal(backend: LocalBackend, fault: dict[str, Any]) -> dict[str, Any]:
    """One fault through the real timeline: applied at once, healed after FAULT_WINDOW_S;
    returns the effect judged at its heal."""
    if "duration_s" not in fault and fault["type"] not in ("kill", "restart"):
        fault["duration_s"] = FAULT_WINDOW_S
    if fault["type"] == "kill":
        fault["restart_after_s"] = FAULT_WINDOW_S
    model = TypeAdapter(Fault).validate_python({"at_s": 0, **fault})
    run_id = f"fx{os.getpid()}n{next(_runs)}"
    proxy = backend.plan.toxiproxy
    api = ToxiproxyClient(backend.plan.services[proxy].address("api")) if proxy else None
    context = FaultContext(
        backend, backend.plan, run_id, clock=backend, toxiproxy=api, network=backend
    )
    # Registered with a journal, or another harness's heal takes these rules for a dead run's.
    journal_dir = backend.plan.run_dir / "journals" / run_id
    journal_dir.mkdir(parents=True, exist_ok=True)
    register_run(run_id, FaultJournal.start(journal_dir, run_id).path)
    events: list[FaultEvent] = []
    registry = HealRegistry()
    timeline = Timeline([model], context, registry, events.append)
    try:
        timeline.start(time.monotonic_ns())
        deadline = time.monotonic() + FAULT_WINDOW_S + 30
        while not any(e.phase == "healed" for e in events) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        timeline.stop()
        timeline.heal_remaining()
        registry.heal_all()
        netfilter.sweep(run_id)
        unregister_run(run_id)
    assert timeline.errors == [], timeline.errors
    healed = next(e for e in events if e.phase == "healed")
    effect = healed.detail[EFFECT_KEY]
    assert isinstance(effect, dict)
    print(fault["type"], effect)  # the evidence, for the log
    return effect


ON_A = [
    {"type": "kill", "target": "a"},
    {"type": "pause", "target": "a"},
    {"type": "restart", "target": "a"},
    {"type": "partition", "isolate": "a"},
    {"type": "packet_loss", "target": "a", "percent": 50},
    {"type": "clock_skew", "target": "a", "offset_ms": 30_000},
    {"type": "clock_skew", "target": "a", "offset_ms": -750},
    {"type": "latency", "link": "a-b", "latency_ms": 5},
    {"type": "bandwidth", "link": "a-b", "rate_kb_per_s": 100},
    {"type": "slicer", "link": "a-b", "average_size": 2, "size_variation": 1, "delay_us": 10},
    {"type": "timeout", "link": "a-b", "timeout_ms": 5000},
    {"type": "link_down", "link": "a-b"},
]


@pytest.mark.parametrize("fault", ON_A, ids=lambda f: f"{f['type']}-{f.get('offset_ms', '')}")
def test_each_fault_kind_is_seen_acting(bound: LocalBackend, fault: dict[str, Any]) -> None:
    effect = apply_and_heal(bound, dict(fault))
    assert effect["status"] == "effective", effect
    if fault["type"] in ("partition", "packet_loss"):
        assert effect["evidence"]["packets_dropped"] > 0
    if fault["type"] == "clock_skew" and abs(fault["offset_ms"]) >= 2000:
        shown = effect["evidence"]["a"]["http_date_offset_ms"]
        assert abs(shown - fault["offset_ms"]) < 1500, shown  # the clock the peer shows


@pytest.mark.parametrize("fault", [ON_A[3], ON_A[4]], ids=["partition", "packet_loss"])
def test_kernel_faults_on_connections_from_127_0_0_1_are_not_effective(
    unbound: LocalBackend, fault: dict[str, Any]
) -> None:
    effect = apply_and_heal(unbound, dict(fault))
    assert effect["status"] == "not_effective", effect
    assert effect["evidence"]["packets_dropped"] == 0


def test_connections_not_from_a_nodes_own_address_are_warned_about(
    bound: LocalBackend, unbound: LocalBackend
) -> None:
    def nodes(backend: LocalBackend) -> list[tuple[str, str, int | None]]:
        return [(n, backend.plan.services[n].host, backend.facts(n).pid) for n in ("a", "b")]

    assert source_warnings(nodes(bound)) == []
    warnings = source_warnings(nodes(unbound))
    assert len(warnings) == 2 and all("127.0.0.1" in warning for warning in warnings), warnings


@pytest.fixture(scope="module")
def go_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed")
    work = tmp_path_factory.mktemp("goclock")
    shutil.copytree(PROGRAMS / "goclock", work / "src")
    subprocess.run(
        ["go", "build", "-o", str(work / "goclock"), "."], cwd=work / "src", check=True, timeout=300
    )
    return work / "goclock"


def _go_topology(program: Path) -> str:
    return f"""\
name: goclock
services:
  g:
    role: clock
    ports: [http]
    clock_control: true
    command: ["{program}", -http, "${{self.address.http}}", -lifetime, 5m]
    health: {{http: "http://${{self.address.http}}/", timeout_s: 10}}
"""


def test_clock_skew_on_a_go_program_is_not_effective(go_program: Path, tmp_path: Path) -> None:
    """libfaketime is preloaded (the Go binary links libc for its resolver) yet its clock does
    not move: the check must see that, both from the binary and from its Date header."""
    for backend in _backend(tmp_path, _go_topology(go_program)):
        pid = backend.facts("g").pid
        assert pid is not None and "libfaketime" in Path(f"/proc/{pid}/maps").read_text()
        effect = apply_and_heal(backend, {"type": "clock_skew", "target": "g", "offset_ms": 30_000})
        assert effect["status"] == "not_effective", effect
        assert "Go program" in effect["reason"]


def test_clock_skew_on_a_go_program_is_refused_at_validate_time(
    go_program: Path, tmp_path: Path
) -> None:
    (tmp_path / "topology.yaml").write_text(_go_topology(go_program))
    scenario = tmp_path / "skew.yaml"
    scenario.write_text(
        "name: go-skew\ntopology: topology.yaml\nload: {rate_per_s: 10, duration_s: 5}\n"
        "faults:\n  - {type: clock_skew, at_s: 1, target: g, offset_ms: 500, duration_s: 1}\n"
    )
    with pytest.raises(ScenarioError) as refused:
        load_scenario(scenario)
    message = str(refused.value)
    assert f"{scenario}:5" in message and "faults.0" in message, message
    assert "Go program" in message and "would do nothing" in message


def test_clock_skew_on_a_statically_linked_program_is_refused(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    source = tmp_path / "static.c"
    source.write_text("int main(void) { return 0; }\n")
    program = tmp_path / "static"
    subprocess.run(["gcc", "-static", "-o", str(program), str(source)], check=True, timeout=60)
    (tmp_path / "topology.yaml").write_text(
        f'name: static\nservices:\n  s: {{command: ["{program}"], clock_control: true}}\n'
    )
    scenario = tmp_path / "skew.yaml"
    scenario.write_text(
        "name: static-skew\ntopology: topology.yaml\nload: {rate_per_s: 10, duration_s: 5}\n"
        "faults:\n  - {type: clock_skew, at_s: 1, target: s, offset_ms: 500, duration_s: 1}\n"
    )
    with pytest.raises(ScenarioError, match="statically linked"):
        load_scenario(scenario)
