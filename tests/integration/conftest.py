from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.backends.local import LocalBackend
from harness.paths import REFERENCE_TOPOLOGY, results_root
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _toolchain_present() -> None:
    """Integration tests run real components: `hftchaos setup` must have provisioned them."""
    locate_toolchain()


def processes_of_services(pids: Iterable[int]) -> list[str]:
    """Which of these pids still exist (zombies included) as a service process."""
    alive = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE or process.ppid() == os.getpid():
                alive.append(f"{pid} {process.name()} {process.status()}")
        except psutil.NoSuchProcess:
            continue
    return alive


def bound_ports(ports: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (host, port) pairs that something still listens on."""
    taken = []
    for host, port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                taken.append((host, port))
    return taken


@pytest.fixture(scope="session", autouse=True)
def _results_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Scenario runs made by tests write their results away from the repository's results/."""
    os.environ["HFTCHAOS_RESULTS"] = str(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def shared_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """One reference topology for every scenario test that can share it (each scenario heals
    its faults, and tests check that it did). No clock control here: preloading libfaketime
    costs the preloaded process, so clock tests bring up their own topology."""
    plan = make_plan(
        load_topology(REFERENCE_TOPOLOGY),
        tmp_path_factory.mktemp("shared-topology"),
        locate_toolchain(),
    )
    with LocalBackend(plan) as backend:
        backend.up()
        yield backend


# Two releases of the reference engine that differ only in their Raft election timeouts
# (defaults 80-160 ms); "slow" must lose visibly more time electing a new leader.
SLOW_ELECTION_TIMEOUTS = {
    "ENGINE_ELECTION_TIMEOUT_MIN_MS": "800",
    "ENGINE_ELECTION_TIMEOUT_MAX_MS": "1200",
}
# No warm-up (default 3 s): what is compared is how long elections take, not latency.
COMPARE_SCENARIO = """\
name: compare-leader-kill
description: Kill the engine's Raft leader under light load; restart it 2 s later.
load: {rate_per_s: 100, duration_s: 8, warmup_s: 0}
faults:
  - type: kill
    at_s: 2.5
    target: {role: engine, select: leader}
    restart_after_s: 1.5
slo:
  failover_ms: {max: 5000}
checks: []
"""
COMPARE_REPEATS = 3


@dataclass(frozen=True)
class TwoReleaseResults:
    results_root: Path
    baseline: str  # election timeouts at their defaults
    candidate: str  # slower elections
    scenario: str
    run_dirs: dict[str, list[Path]]


def run_releases(
    work: Path, scenario: str, runs: dict[str, tuple[LocalBackend, int]]
) -> dict[str, list[Path]]:
    """`scenario` run for each release on its backend, as many times as asked, each run
    indexed in the results catalog of the session's results root: the run directories."""
    from harness.catalog import open_catalog
    from harness.runner import run_scenario

    scenario_file = work / "scenario.yaml"
    scenario_file.write_text(scenario)
    catalog = open_catalog()
    run_dirs: dict[str, list[Path]] = {}
    for release, (backend, repeats) in runs.items():
        for _ in range(repeats):
            result = run_scenario(scenario_file, release, lambda _m: None, running=backend)
            assert result.errors == [], result.errors
            catalog.index_run(result.run_dir)
            run_dirs.setdefault(release, []).append(result.run_dir)
    return run_dirs


@pytest.fixture(scope="session")
def two_release_results(
    tmp_path_factory: pytest.TempPathFactory, shared_topology: LocalBackend
) -> TwoReleaseResults:
    """Three leader-kill runs of each release, indexed in the results catalog of the session's
    results root. The baseline runs on the shared topology (default timeouts); the slower
    release gets a topology of its own (the engines read their timeouts when they start,
    restarts included, so the variables stay set while that release runs)."""
    work = tmp_path_factory.mktemp("two-releases")
    fast = run_releases(work, COMPARE_SCENARIO, {"fast": (shared_topology, COMPARE_REPEATS)})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SLOW_ELECTION_TIMEOUTS.items():
            patch.setenv(name, value)
        plan = make_plan(load_topology(REFERENCE_TOPOLOGY), work / "slow", locate_toolchain())
        with LocalBackend(plan) as backend:
            backend.up()
            slow = run_releases(work, COMPARE_SCENARIO, {"slow": (backend, COMPARE_REPEATS)})
    return TwoReleaseResults(
        results_root(), "fast", "slow", "compare-leader-kill", {**fast, **slow}
    )


# For pages that set releases side by side (the dashboard): real runs, two releases, no need
# for them to differ. The run report test reports one of them too, so the safety checks and a
# downtime budget are set (the report shows both).
QUICK_SCENARIO = COMPARE_SCENARIO.replace(
    "name: compare-leader-kill", "name: quick-leader-kill"
).replace("checks: []", "checks: [no_lost_acks, replicas_identical]\ndowntime_budget_ms: 3000")


@pytest.fixture(scope="session")
def two_quick_releases(
    tmp_path_factory: pytest.TempPathFactory, shared_topology: LocalBackend
) -> TwoReleaseResults:
    """One leader-kill run of each of two releases on the shared topology."""
    work = tmp_path_factory.mktemp("two-quick-releases")
    run_dirs = run_releases(
        work, QUICK_SCENARIO, {"0.9": (shared_topology, 1), "1.0": (shared_topology, 1)}
    )
    return TwoReleaseResults(results_root(), "0.9", "1.0", "quick-leader-kill", run_dirs)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--noop-fault",
        action="append",
        default=[],
        metavar="TYPE",
        help="turn every scenario fault of TYPE into a no-op (targets resolved, nothing done): "
        "a test of that fault must then fail, which shows it measures the fault's own effect",
    )


@pytest.fixture(autouse=True)
def _noop_faults(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = set(request.config.getoption("--noop-fault"))
    if not kinds:
        return
    import harness.timeline
    from harness.faults.base import SimpleActiveFault
    from harness.faults.inject import inject
    from harness.faults.kinds.partition import partition_groups
    from harness.faults.selectors import resolve_link, resolve_target

    def maybe_inject(fault: Any, key: int, context: Any) -> Any:
        if fault.type not in kinds:
            return inject(fault, key, context)
        if hasattr(fault, "link"):
            targets = resolve_link(fault.link, context.plan, context.leader_lookup, context.random)
        elif hasattr(fault, "target"):
            targets = resolve_target(
                fault.target, context.plan, context.leader_lookup, context.random
            )
        else:
            targets = [name for group in partition_groups(fault, context) for name in group]
        return SimpleActiveFault(targets, {"noop": True})

    monkeypatch.setattr(harness.timeline, "inject", maybe_inject)
