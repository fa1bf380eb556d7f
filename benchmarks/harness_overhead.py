"""The harness's own cost (performance issue, goal 7), on the local backend:

- `topology_up_s` / `topology_down_s`: the reference topology brought up (every service
  healthy) and torn down, a few rounds;
- `harness_cpu_pct_of_core_during_load`: the CPU the harness process (probes, recording,
  fault timeline, its backend's threads) uses while a scenario's load runs, as a share of one
  core. The load generator's own processes are not in it: `load_path` measures those;
- `run_overhead_pct`: one scenario run on a fresh topology, from the call to its return, over
  the time its file configures (warm-up + load duration), with where the rest went (before
  the load: bring-up and warm-up checks; after it: heal, collect, judge, report, tear down);
- `suite_overhead_pct`: the same for `hftchaos suite` of two library scenarios, wall time
  of the command over the sum of its scenarios' configured times;
- `suite_overhead_pct_shared_topology`: the same suite with `share_topology: true` (one
  topology kept up across its runs).

Part of `hftchaos bench`; --quick uses a 5 s scenario and one round.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.figures import Figure, Measurement
from harness import settings
from harness.backends.local import LocalBackend
from harness.paths import REFERENCE_TOPOLOGY
from harness.runner import run_scenario
from harness.scenario.loader import load_scenario
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

REPOSITORY = Path(__file__).resolve().parents[1]
LIBRARY = REPOSITORY / "scenarios"
ROUNDS = 3
RUN_SCENARIO = LIBRARY / "leader-kill.yaml"
SUITE_SCENARIOS = ((LIBRARY / "leader-kill.yaml", 1), (LIBRARY / "follower-kill.yaml", 1))
SUITE_AVAILABILITY = """\
availability:
  annual_downtime_budget_s: 9000
  baseline_annual_downtime_s: 144000
  incidents_per_year: {leader_loss: 24, follower_loss: 24}
"""
SAMPLE_EVERY_S = 0.25
SAMPLER = "cpu-sampler"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
NS_PER_S = 1_000_000_000

# --quick: the smallest leader kill the validator accepts, no warm-up.
QUICK_SCENARIO = """\
name: bench-quick-kill
load: {rate_per_s: 100, duration_s: 5, warmup_s: 0}
steady_state: {window_s: 1, success_rate_min: 0.5, latency_p99_ms_max: 3000}
faults:
  - type: kill
    at_s: 1.5
    target: {role: engine, select: leader}
    restart_after_s: 1
settle_s: 1
checks: []
"""


def thread_cpu_ticks() -> dict[str, int]:
    """CPU clock ticks (user + system) of each live thread of this process, by thread name
    (threads of one kind, e.g. the probe's per member, are told apart by their names)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    ticks: dict[str, int] = {}
    for native_id, name in names.items():
        try:
            with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        ticks[name] = ticks.get(name, 0) + int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


@dataclass
class CpuSampler:
    """(monotonic ns, this process's CPU ns, CPU ticks by thread) every SAMPLE_EVERY_S, on its
    own thread, so the CPU of any stretch of the run can be read afterwards on the run's own
    clock, and which threads spent it."""

    samples: list[tuple[int, int, dict[str, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> CpuSampler:
        threading.Thread(target=self._sample, name=SAMPLER, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic_ns(), time.process_time_ns(), thread_cpu_ticks()))
            self._stop.wait(SAMPLE_EVERY_S)

    def _inside(self, start_ns: int, end_ns: int) -> list[tuple[int, int, dict[str, int]]]:
        return [sample for sample in self.samples if start_ns <= sample[0] <= end_ns]

    def share_of_core(self, start_ns: int, end_ns: int) -> float | None:
        """CPU over wall time between the first sample at or after `start_ns` and the last at
        or before `end_ns`, in % of one core; the sampler's own CPU is taken out."""
        inside = self._inside(start_ns, end_ns)
        if len(inside) < 2:
            return None
        (wall_0, cpu_0, ticks_0), (wall_1, cpu_1, ticks_1) = inside[0], inside[-1]
        sampler_ns = (ticks_1.get(SAMPLER, 0) - ticks_0.get(SAMPLER, 0)) * NS_PER_S / TICKS_PER_S
        return round(100 * (cpu_1 - cpu_0 - sampler_ns) / (wall_1 - wall_0), 2)

    def by_thread(self, start_ns: int, end_ns: int) -> dict[str, float]:
        """% of one core by thread over the same stretch, the busiest first (threads that
        started inside it count from zero)."""
        inside = self._inside(start_ns, end_ns)
        if len(inside) < 2:
            return {}
        (wall_0, _, ticks_0), (wall_1, _, ticks_1) = inside[0], inside[-1]
        seconds = (wall_1 - wall_0) / NS_PER_S
        shares = {
            name: round(100 * (ticks - ticks_0.get(name, 0)) / TICKS_PER_S / seconds, 2)
            for name, ticks in ticks_1.items()
        }
        return dict(sorted(((k, v) for k, v in shares.items() if v > 0), key=lambda kv: -kv[1]))


def configured_s(file: Path) -> float:
    load = load_scenario(file).scenario.load
    return float(load.warmup_s + load.duration_s)


def up_and_down(rounds: int, work: Path) -> list[tuple[float, float]]:
    timings = []
    for round_number in range(rounds):
        plan = make_plan(
            load_topology(REFERENCE_TOPOLOGY), work / f"up-{round_number}", locate_toolchain()
        )
        backend = LocalBackend(plan)
        started = time.monotonic()
        try:
            backend.up()
            up_s = time.monotonic() - started
        finally:
            stopping = time.monotonic()
            backend.teardown()
        timings.append((up_s, time.monotonic() - stopping))
    return timings


def one_run(scenario: Path) -> dict[str, Any]:
    """One run on a fresh topology, in this process, with its CPU sampled."""
    with CpuSampler() as sampler:
        called_ns = time.monotonic_ns()
        result = run_scenario(scenario, "bench", lambda _message: None)
        returned_ns = time.monotonic_ns()
    summary = result.summary
    if summary is None or summary.load is None or summary.load.ended_ns is None:
        raise RuntimeError(f"the run did not finish its load: {result.run_dir}")
    started_ns, ended_ns = summary.load.started_ns, summary.load.ended_ns
    wall_s = (returned_ns - called_ns) / NS_PER_S
    configured = configured_s(scenario)
    return {
        "scenario": summary.scenario,
        "status": summary.status.value,
        "verdict": summary.verdict.value,
        "wall_s": round(wall_s, 2),
        "configured_s": configured,
        "before_load_s": round((started_ns - called_ns) / NS_PER_S, 2),
        "load_s": round((ended_ns - started_ns) / NS_PER_S, 2),
        "after_load_s": round((returned_ns - ended_ns) / NS_PER_S, 2),
        "harness_cpu_pct_of_core_during_load": sampler.share_of_core(started_ns, ended_ns),
        "harness_cpu_pct_of_core_whole_run": sampler.share_of_core(called_ns, returned_ns),
        "harness_cpu_pct_by_thread_during_load": sampler.by_thread(started_ns, ended_ns),
        "overhead_pct": round(100 * (wall_s / configured - 1), 1),
    }


def suite_run(scenarios: list[tuple[Path, int]], work: Path, shared: bool) -> dict[str, Any]:
    """`scenarios`: (file, repeat) in the suite's order; `shared`: share_topology."""
    suite_file = work / f"overhead-suite{'-shared' if shared else ''}.yaml"
    listed = "\n".join(f"  - {{file: {file}, repeat: {repeat}}}" for file, repeat in scenarios)
    sharing = f"share_topology: {'true' if shared else 'false'}"
    suite_file.write_text(
        f"name: bench-overhead\nrelease: bench\n{sharing}\nscenarios:\n{listed}\n"
        f"{SUITE_AVAILABILITY}"
    )
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "suite", str(suite_file)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPOSITORY,
        env={**os.environ, settings.RESULTS.variable: str(work / "suite-results")},
    )
    wall_s = time.monotonic() - started
    if completed.returncode not in (0, 1):  # 1: a run missed an SLO; the timing still holds
        output = (completed.stdout + completed.stderr)[-2000:]
        raise RuntimeError(f"suite exit {completed.returncode}: {output}")
    configured = sum(configured_s(file) * repeat for file, repeat in scenarios)
    return {
        "scenarios": [(file.name, repeat) for file, repeat in scenarios],
        "runs": sum(repeat for _, repeat in scenarios),
        "exit_code": completed.returncode,
        "wall_s": round(wall_s, 2),
        "configured_s": configured,
        "overhead_pct": round(100 * (wall_s / configured - 1), 1),
    }


def measure(quick: bool) -> Measurement:
    rounds = 1 if quick else ROUNDS
    with tempfile.TemporaryDirectory(prefix="hftchaos-bench-overhead-") as scratch:
        work = Path(scratch)
        # The run made in this process writes its results under the scratch directory.
        with mock.patch.dict(os.environ, {settings.RESULTS.variable: str(work / "run-results")}):
            if quick:
                quick_file = work / "bench-quick-kill.yaml"
                quick_file.write_text(QUICK_SCENARIO)
                run_file, suite_files = quick_file, [(quick_file, 2)]
            else:
                run_file, suite_files = RUN_SCENARIO, list(SUITE_SCENARIOS)
            timings = up_and_down(rounds, work)
            run = one_run(run_file)
            suite = suite_run(suite_files, work, shared=False)
            shared_suite = suite_run(suite_files, work, shared=True)
    ups, downs = [up for up, _ in timings], [down for _, down in timings]
    local = {"backend": "local", "topology": "reference"}

    def figure(name: str, value: float | None, unit: str, goal: str = "", **more: Any) -> Figure:
        conditions = {**local, **more}
        return Figure(
            name=name, value=value, unit=unit, better="lower", conditions=conditions, goal=goal
        )

    figures = [
        figure(
            "topology_up_s",
            round(statistics.median(ups), 2),
            "s",
            "<= 10 s",
            rounds=rounds,
            max_s=round(max(ups), 2),
        ),
        figure(
            "topology_down_s",
            round(statistics.median(downs), 2),
            "s",
            "<= 3 s",
            rounds=rounds,
            max_s=round(max(downs), 2),
        ),
        figure(
            "harness_cpu_pct_of_core_during_load",
            run["harness_cpu_pct_of_core_during_load"],
            "%",
            "<= 5 %",
            scenario=run["scenario"],
        ),
        figure(
            "run_overhead_pct",
            run["overhead_pct"],
            "%",
            scenario=run["scenario"],
            configured_s=run["configured_s"],
        ),
        figure(
            "suite_overhead_pct",
            suite["overhead_pct"],
            "%",
            "<= 10 %",
            runs=suite["runs"],
            configured_s=suite["configured_s"],
        ),
        figure(
            "suite_overhead_pct_shared_topology",
            shared_suite["overhead_pct"],
            "%",
            "<= 10 %",
            runs=shared_suite["runs"],
            configured_s=shared_suite["configured_s"],
        ),
    ]
    notes = [
        f"one run of {run['scenario']}: {run['wall_s']} s for {run['configured_s']} s "
        f"configured; before the load {run['before_load_s']} s, load {run['load_s']} s, "
        f"after it {run['after_load_s']} s"
    ]
    return Measurement(
        figures,
        conditions=local,
        details={
            "up_down_s": timings,
            "run": run,
            "suite": suite,
            "suite_shared_topology": shared_suite,
        },
        notes=notes,
    )
