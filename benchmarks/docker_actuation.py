"""Fault actuation on the Docker backend: from the instant a fault is due to the instant its
effect is seen from outside the backend call, per fault type; and the reference topology's
up (warm images) and down times.

Each effect is observed independently of what the backend reports:
- kill: the container's process (its host pid) no longer exists, and, as `kill_stopped`, the
  first instant the kernel shows it exiting (`fault_actuation.ExitWatch`);
- pause: the container's cgroup freezer reads FROZEN;
- packet_loss, partition: the tagged rule is listed by a separate `nsenter ... iptables -S`
  in the target's namespace;
- clock_skew: the node's own /status reports a wall clock at least 90 % of the offset away.

    python -m benchmarks.docker_actuation [--rounds 10]
writes results/bench/docker_actuation.json. Needs root, a Docker engine and the images
(`hftchaos setup --docker`); hold the topology lock while it runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import percentiles_ms
from benchmarks.fault_actuation import ExitWatch
from harness.backends.docker.backend import DockerBackend
from harness.backends.docker.realization import docker_realization
from harness.paths import REFERENCE_TOPOLOGY
from harness.store.atomic import write_text_atomically
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

POLL_S = 0.0005
EFFECT_TIMEOUT_S = 10.0
SKEW_MS = 5000.0
ENGINES = ("n1", "n2", "n3")


def wait_for(effect: Callable[[], bool]) -> int:
    deadline = time.monotonic() + EFFECT_TIMEOUT_S
    while not effect():
        if time.monotonic() > deadline:
            raise RuntimeError("the fault had no visible effect within the timeout")
        time.sleep(POLL_S)
    return time.monotonic_ns()


def timed(apply: Callable[[], Any], effect: Callable[[], bool]) -> tuple[int, Any]:
    due = time.monotonic_ns()
    applied = apply()
    return wait_for(effect) - due, applied


def status(backend: DockerBackend, name: str) -> dict[str, Any]:
    url = backend.plan.services[name].raft_status_url
    assert url is not None
    with urllib.request.urlopen(url, timeout=1) as response:
        document: dict[str, Any] = json.load(response)
    return document


def frozen(backend: DockerBackend, name: str) -> bool:
    container_id = backend.facts(name).container_id
    state = Path(f"/sys/fs/cgroup/freezer/docker/{container_id}/freezer.state")
    return state.read_text().strip() == "FROZEN"


def rule_listed(backend: DockerBackend, name: str, tag: str) -> bool:
    from harness.backends.docker import netns

    space = backend.namespace(name)  # looks where the backend acts, by its own listing
    return netns.count_tagged(space, tag.split(":")[1]) > 0


def measure_round(backend: DockerBackend, index: int, samples: dict[str, list[int]]) -> None:
    name = ENGINES[index % 3]
    pid = backend.facts(name).pid
    assert pid is not None
    stopped = ExitWatch(pid)
    due = time.monotonic_ns()
    took, _ = timed(lambda: backend.kill(name), lambda: not psutil.pid_exists(pid))
    samples["kill"].append(took)
    samples["kill_stopped"].append(stopped.seen_ns() - due)
    backend.start(name)
    backend.wait_healthy(name)
    took, _ = timed(lambda: backend.pause(name), lambda: frozen(backend, name))
    samples["pause"].append(took)
    backend.resume(name)
    run = f"bench{index}"
    tag = f"hftchaos:{run}:1"
    took, fault = timed(
        lambda: backend.drop_packets(run, 1, name, 30), lambda: rule_listed(backend, name, tag)
    )
    samples["packet_loss"].append(took)
    fault.heal()
    others = [other for other in ENGINES if other != name]
    took, fault = timed(
        lambda: backend.partition(run, 2, [[name], others]),
        lambda: rule_listed(backend, name, f"hftchaos:{run}:2"),
    )
    samples["partition"].append(took)
    fault.heal()
    took, _ = timed(
        lambda: backend.set_clock_offset(name, SKEW_MS),
        lambda: status(backend, name)["wall_ns"] - time.time_ns() > SKEW_MS * 0.9e6,
    )
    samples["clock_skew"].append(took)
    backend.set_clock_offset(name, 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    arguments = parser.parse_args(argv)
    loaded = load_topology(REFERENCE_TOPOLOGY)
    topology = loaded.topology.with_clock_control(ENGINES)
    samples: dict[str, list[int]] = {
        kind: []
        for kind in ("kill", "kill_stopped", "pause", "packet_loss", "partition", "clock_skew")
    }
    with tempfile.TemporaryDirectory(prefix="hftchaos-docker-bench-") as work:
        plan = make_plan(
            loaded.with_topology(topology),
            Path(work) / "run",
            locate_toolchain(),
            docker_realization(),
        )
        backend = DockerBackend(plan, print)
        started = time.monotonic()
        try:
            backend.up()
            up_s = time.monotonic() - started
            backend.prepare_network_faults()  # as a run does after bring-up
            for index in range(arguments.rounds):
                measure_round(backend, index, samples)
        finally:
            stopping = time.monotonic()
            backend.teardown()
            down_s = time.monotonic() - stopping
    figures = {
        "rounds": arguments.rounds,
        "engine": backend.engine_version,
        "up_s_warm_images": round(up_s, 2),
        "down_s": round(down_s, 2),
        "actuation": {kind: percentiles_ms(values) for kind, values in samples.items()},
    }
    print(json.dumps(figures, indent=2))
    # Its own JSON beside `hftchaos bench`'s documents: it needs the Docker engine and images.
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path("results/bench") / f"docker_actuation-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out, json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
