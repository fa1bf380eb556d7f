"""The library's scenarios on the Docker backend: the reference topology built as images and
run as containers on the run's own network, judged by the same scenario files (so the same
SLOs and safety checks) as on the local backend; and, after each run, nothing of it left:
no container, network, volume or host iptables rule (compared before and after).

Each scenario brings up its own topology (about 10 s of each test's 30-50): the reference
safety checks judge the whole state of the engines, and on a topology shared with an earlier
scenario its orders are orders nobody in this run sent (no_double_fills says so).

The full scenario runs here (the five library scenarios, the prebuilt image's leader kill, the
link-fault effect run: about six minutes) are a long suite of their own, `nox -s docker`, for
a quiet machine: with three engines, Kafka, Toxiproxy and the gateway in containers, two cores
run about 86 % busy, and the prebuilt image's leader kill broke its SLOs in two of four CI
runs (first_commit_ms 1115 > 1000 once, p99 before faults 772 > 250 ms once). The `tests`
session, which CI runs, keeps the SIGKILLed-harness cases on Docker. Both get docker.io,
debootstrap, dockerd and the images first (`hftchaos setup --docker`).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.backends.docker.engine import engine_client
from harness.backends.docker.leftovers import RUN_LABEL
from harness.paths import REFERENCE_TOPOLOGY
from harness.runner import RunResult, run_scenario
from harness.verdicts import Verdict

pytestmark = [pytest.mark.integration, pytest.mark.docker]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
LIBRARY = [
    "leader-kill",
    "leader-packet-loss-moderate",
    "leader-clock-skew-ahead",
    "leader-isolation",
    "kafka-broker-kill",
]


@pytest.fixture(scope="module")
def engine() -> Any:
    return engine_client()  # no engine: one line saying how to start one (exit 3 in the CLI)


def host_rules() -> list[str]:
    """Every table's rules on the host, without the packet counters, once Docker has caught
    up: its rules for a network it has just removed linger a moment after its bridge is gone
    (seen: the previous test's `br-<id>` isolation rules in one test's before-snapshot, gone
    by its after-snapshot). Rules naming a missing bridge still there after 10 s are kept, so
    a rule Docker never removes is still seen as left behind."""
    deadline = time.monotonic() + 10
    while True:
        listing = subprocess.run(
            ["iptables-save"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
        rules = sorted(line for line in listing.splitlines() if not line.startswith(("#", ":")))
        bridges = set(re.findall(r"\bbr-[0-9a-f]{12}\b", listing))
        missing = {bridge for bridge in bridges if not Path("/sys/class/net", bridge).exists()}
        if not missing or time.monotonic() > deadline:
            return rules
        time.sleep(0.2)


def what_runs_left(client: Any) -> dict[str, list[str]]:
    return {
        "containers": sorted(
            c.name
            for c in client.containers.list(
                all=True, ignore_removed=True, filters={"label": RUN_LABEL}
            )
        ),
        "networks": sorted(n.name for n in client.networks.list(filters={"label": RUN_LABEL})),
        "volumes": sorted(v.name for v in client.volumes.list()),
        "host rules": host_rules(),
    }


def run_on_docker(scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunResult:
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(tmp_path / "results"))
    return run_scenario(scenario, None, print, backend="docker")


def assert_passed(result: RunResult) -> None:
    failed = [
        f"{slo.metric}: {slo.explanation}"
        for slo in result.slos
        if slo.verdict is not Verdict.VALID
    ]
    checks = [f"{c.name}: {c.explanation}" for c in result.checks if c.verdict is Verdict.INVALID]
    steady = [window for window in result.steady if window.verdict is not Verdict.VALID]
    problems = (result.errors, failed, checks, steady, result.run_dir)
    assert result.verdict is Verdict.VALID, problems
    assert result.summary is not None


@pytest.mark.docker_long
@pytest.mark.parametrize("name", LIBRARY)
def test_library_scenario_passes_on_docker_and_leaves_nothing(
    name: str, engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = what_runs_left(engine)
    result = run_on_docker(SCENARIOS / f"{name}.yaml", tmp_path, monkeypatch)
    assert_passed(result)
    assert result.summary is not None and result.summary.backend is not None
    assert result.summary.backend.name == "docker"
    assert result.summary.backend.engine_version
    assert set(result.summary.backend.images) >= {"n1", "n2", "n3", "kafka", "gateway"}
    # Every fault was seen acting in the containers, and no userland proxy carried the load.
    effects = [fault.effect.status if fault.effect else None for fault in result.summary.faults]
    assert effects and set(effects) == {"effective"}, effects
    assert not [warning for warning in result.summary.warnings if "userland proxy" in warning]
    assert what_runs_left(engine) == before


USER_IMAGE = "example.com/trading/reference-user:1"


def user_topology(tmp_path: Path, engine: Any) -> Path:
    """The reference topology with its engine nodes and gateway on an image the harness did
    not build: the user's own (here built by the test with the SDK, from the same sources)."""
    from harness.images.base import chosen_base
    from harness.images.build import build_images
    from harness.toolchain import locate_toolchain

    built = build_images(engine, {"reference"}, chosen_base(None), locate_toolchain(), print)
    dockerfile = f"FROM {built['reference'].tag}\nLABEL org.example.owner=trading-team\n"
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=USER_IMAGE, rm=True)
    text = REFERENCE_TOPOLOGY.read_text()
    for service in ("n1", "n2", "n3", "gateway"):
        text = text.replace(
            f"\n  {service}:\n    build: reference\n", f"\n  {service}:\n    image: {USER_IMAGE}\n"
        )
    assert text.count(USER_IMAGE) == 4
    text = text.replace(
        "target: targets.reference.checks:TARGET", "target: targets.reference.checks:TARGET"
    )
    path = tmp_path / "user-topology.yaml"
    path.write_text(text)
    return path


def scenario_on(
    topology: Path, library: str, name: str, tmp_path: Path, more_faults: str = ""
) -> Path:
    """A library scenario unchanged but for its name, its topology and `more_faults` (YAML
    list items) after its own faults."""
    text = (SCENARIOS / f"{library}.yaml").read_text()
    assert text.count("\nslo:\n") == 1 and f"name: {library}\n" in text
    text = text.replace("\nslo:\n", f"\n{more_faults}slo:\n", 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(f"name: {library}\n", f"name: {name}\ntopology: {topology}\n"))
    return path


@pytest.mark.docker_long
def test_a_topology_naming_a_prebuilt_image_runs_a_leader_kill(
    engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topology = user_topology(tmp_path, engine)
    scenario = scenario_on(topology, "leader-kill", "leader-kill-user-image", tmp_path)
    before = what_runs_left(engine)
    result = run_on_docker(scenario, tmp_path, monkeypatch)
    assert_passed(result)
    assert result.summary is not None and result.summary.backend is not None
    user_id = engine.images.get(USER_IMAGE).id
    assert result.summary.backend.images["n1"] == user_id
    assert what_runs_left(engine) == before


ONE_SERVICE = """\
name: lonely
services:
  toxiproxy:
    role: toxiproxy
    build: toxiproxy
    ports: [api]
    command: ["${toolchain.toxiproxy_server}", -host, "${self.host}", -port, "${self.port.api}"]
    health: {http: "http://${self.address.api}/version", timeout_s: 15}
"""

HARNESS_THEN_SLEEP = """
import sys, time
from pathlib import Path
from harness.backends.docker.backend import DockerBackend
from harness.backends.docker.realization import docker_realization
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan
plan = make_plan(load_topology(Path(sys.argv[1])), Path(sys.argv[2]), locate_toolchain(),
                 docker_realization())
backend = DockerBackend(plan)
backend.up()
print(backend.run, flush=True)
time.sleep(600)
"""


def test_a_sigkilled_harness_leaves_no_container_or_network(engine: Any, tmp_path: Path) -> None:
    topology = tmp_path / "lonely.yaml"
    topology.write_text(ONE_SERVICE)
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS_THEN_SLEEP, str(topology), str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert harness.stdout is not None
        run = harness.stdout.readline().strip()
        label = {"label": f"{RUN_LABEL}={run}"}
        assert run and engine.containers.list(filters=label, ignore_removed=True), (
            "the topology did not come up"
        )
    finally:
        harness.kill()  # SIGKILL: no finally, no teardown in the harness
        harness.wait()
    deadline = time.monotonic() + 30
    while engine.containers.list(
        all=True, ignore_removed=True, filters=label
    ) or engine.networks.list(filters=label):
        assert time.monotonic() < deadline, "the killed harness's containers are still there"
        time.sleep(0.2)


IDLE_LINK = "idle-consumer-n1"


def latency_on_a_used_and_an_idle_link(tmp_path: Path) -> Path:
    """gateway-leader-latency as it is, plus the same toxic on a link of the proxy that no
    service dials (added to a copy of the reference topology): one topology shows the check
    both ways, through the container's own socket table."""
    topology = tmp_path / "idle-link-topology.yaml"
    text = REFERENCE_TOPOLOGY.read_text()
    assert text.rstrip().endswith("port: consumer}"), "links: is no longer the last section"
    # To the leader's own upstream, n1:http, which gateway-n1 also dials: the sockets to it
    # cannot be told apart by address, so the check must not count them for either link
    # (when it did, this link was judged effective with gateway-n1's bytes).
    topology.write_text(f"{text}  {IDLE_LINK}: {{from: consumer, to: n1, port: http}}\n")
    idle_fault = (
        "  - {type: latency, at_s: 4, duration_s: 5, latency_ms: 40, jitter_ms: 10, "
        f"stream: both, link: {IDLE_LINK}}}\n"
    )
    return scenario_on(
        topology, "gateway-leader-latency", "latency-used-and-idle", tmp_path, idle_fault
    )


@pytest.mark.docker_long
def test_a_latency_toxic_is_effective_on_a_used_link_and_not_on_an_idle_one(
    engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = what_runs_left(engine)
    result = run_on_docker(latency_on_a_used_and_an_idle_link(tmp_path), tmp_path, monkeypatch)
    assert result.summary is not None, (result.errors, result.run_dir)
    effects = {fault.fault: fault.effect for fault in result.summary.faults}
    used, idle = effects[0], effects[1]
    assert used is not None and used.status == "effective", used
    through = used.evidence["bytes_in"]
    assert isinstance(through, dict) and len(through) == 1, through
    assert IDLE_LINK not in through and all(
        isinstance(count, int) and count > 0 for count in through.values()
    ), through
    assert idle is not None and idle.status == "not_effective", idle
    assert idle.evidence["bytes_in"] == {IDLE_LINK: 0}, idle
    # The scenario's own SLOs still hold; the no-op fault alone keeps the run from passing.
    assert [slo.metric for slo in result.slos if slo.verdict is not Verdict.VALID] == []
    assert result.verdict is Verdict.UNKNOWN, (result.verdict, result.errors)
    assert what_runs_left(engine) == before
