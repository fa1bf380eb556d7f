"""How busy the machine running the topology was, sampled during every run (Linux /proc).

A latency figure taken on a saturated rig measures the rig as much as the system: on the
2-core reference machine the topology runs near 80 % of both cores at 200 orders/s, and the
steady-state windows that failed were the ones where the host, or the hypervisor under it
(CPU steal), had nothing left. The run records, every INTERVAL_S, the host's busy and stolen
share of all cores and each local service's CPU (in % of one core), so a failed window can be
read against the rig's state. Nothing here changes a verdict.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.probes import PeriodicProbe
from harness.records import MetricSample

INTERVAL_S = 0.5
INTERVAL_NS = int(INTERVAL_S * 1_000_000_000)
HOST_BUSY = "rig_host_busy_pct"
HOST_STEAL = "rig_host_steal_pct"
SERVICE_PREFIX = "rig_cpu_pct:"
# Above either, latency figures include queueing for CPU: said next to the figures.
SATURATED_BUSY_PCT = 90.0
SATURATED_STEAL_PCT = 10.0
PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative ticks over all cores since boot."""

    total: int
    busy: int
    steal: int


def parse_proc_stat(text: str) -> CpuTimes | None:
    """The aggregate `cpu` line: user nice system idle iowait irq softirq steal [guest...].
    Guest time is already counted in user and nice, so it is not added again."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu" and len(fields) >= 9:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[1:9])
            busy = user + nice + system + irq + softirq
            return CpuTimes(total=busy + idle + iowait + steal, busy=busy, steal=steal)
    return None


def host_cpu_measure(
    kind: Literal["busy", "steal"], read: Callable[[], str] = PROC_STAT.read_text
) -> Callable[[], float | None]:
    """% of all cores busy (or stolen by the hypervisor) since the previous call."""
    previous: list[CpuTimes] = []

    def measure() -> float | None:
        now = parse_proc_stat(read())
        if now is None:
            return None
        before = previous[0] if previous else None
        previous[:] = [now]
        if before is None or now.total <= before.total:
            return None
        part = (now.busy - before.busy) if kind == "busy" else (now.steal - before.steal)
        return 100.0 * part / (now.total - before.total)

    return measure


def process_cpu_ticks(stat_text: str) -> int:
    """utime + stime (all threads) from /proc/<pid>/stat; the command name may hold spaces."""
    fields = stat_text[stat_text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def process_cpu_measure(
    pid_of: Callable[[], int | None],
    read_stat: Callable[[int], str] = lambda pid: Path(f"/proc/{pid}/stat").read_text(),
    clock: Callable[[], float] = time.monotonic,
    ticks_per_s: float = float(os.sysconf("SC_CLK_TCK")),
) -> Callable[[], float | None]:
    """CPU of one process in % of one core since the previous call; None on the first call,
    when the process is gone, and across a restart (a new pid starts a new baseline)."""
    previous: list[tuple[int, int, float]] = []  # pid, ticks, at

    def measure() -> float | None:
        pid = pid_of()
        if pid is None:
            previous.clear()
            return None
        try:
            ticks = process_cpu_ticks(read_stat(pid))
        except (OSError, ValueError, IndexError):
            previous.clear()
            return None
        at = clock()
        before = previous[0] if previous else None
        previous[:] = [(pid, ticks, at)]
        if before is None or before[0] != pid or at <= before[2]:
            return None
        return 100.0 * (ticks - before[1]) / ticks_per_s / (at - before[2])

    return measure


def rig_probes(
    service_pids: Mapping[str, Callable[[], int | None]],
    publish: Callable[[MetricSample], None],
) -> list[PeriodicProbe]:
    """Not started. Empty where /proc/stat cannot be read (not Linux)."""
    try:
        if parse_proc_stat(PROC_STAT.read_text()) is None:
            return []
    except OSError:
        return []
    probes = [
        PeriodicProbe(HOST_BUSY, host_cpu_measure("busy"), publish, INTERVAL_S),
        PeriodicProbe(HOST_STEAL, host_cpu_measure("steal"), publish, INTERVAL_S),
    ]
    for name, pid_of in service_pids.items():
        probes.append(
            PeriodicProbe(SERVICE_PREFIX + name, process_cpu_measure(pid_of), publish, INTERVAL_S)
        )
    return probes


@dataclass(frozen=True)
class RigLoad:
    """The rig over one stretch of the run."""

    samples: int
    host_busy_pct_mean: float
    host_busy_pct_max: float | None
    host_steal_pct_mean: float | None
    host_steal_pct_max: float | None
    services_cpu_pct_mean: dict[str, float]

    @property
    def saturated(self) -> bool:
        steal = self.host_steal_pct_max or 0.0
        return self.host_busy_pct_mean >= SATURATED_BUSY_PCT or steal >= SATURATED_STEAL_PCT


def rig_load(metrics: Sequence[MetricSample], start_ns: int, end_ns: int) -> RigLoad | None:
    """Samples taken in [start_ns, end_ns] (each covers the INTERVAL_S before it); None if the
    run recorded no rig samples there."""
    values: dict[str, list[float]] = {}
    for sample in metrics:
        if sample.value is None or not start_ns <= sample.at_ns <= end_ns:
            continue
        if sample.probe in (HOST_BUSY, HOST_STEAL) or sample.probe.startswith(SERVICE_PREFIX):
            values.setdefault(sample.probe, []).append(sample.value)
    busy, steal = values.get(HOST_BUSY, []), values.get(HOST_STEAL, [])
    if not busy:
        return None
    services = {
        probe.removeprefix(SERVICE_PREFIX): sum(found) / len(found)
        for probe, found in sorted(values.items())
        if probe.startswith(SERVICE_PREFIX)
    }
    return RigLoad(
        samples=len(busy),
        host_busy_pct_mean=sum(busy) / len(busy),
        host_busy_pct_max=max(busy),
        host_steal_pct_mean=sum(steal) / len(steal) if steal else None,
        host_steal_pct_max=max(steal) if steal else None,
        services_cpu_pct_mean=dict(sorted(services.items(), key=lambda item: -item[1])),
    )


def describe(load: RigLoad) -> str:
    """One line for the console and the run report."""
    text = f"host CPU {load.host_busy_pct_mean:.0f} % busy"
    if load.host_busy_pct_max is not None:
        text += f" (max {load.host_busy_pct_max:.0f} % over {INTERVAL_S:g} s)"
    if load.host_steal_pct_max is not None:
        mean = "" if load.host_steal_pct_mean is None else f"{load.host_steal_pct_mean:.1f} % "
        text += f", {mean}stolen by the hypervisor (max {load.host_steal_pct_max:.0f} %)"
    top = list(load.services_cpu_pct_mean.items())[:4]
    if top:
        text += "; busiest: " + ", ".join(f"{name} {pct:.0f} %" for name, pct in top)
        text += " of a core"
    if load.saturated:
        text += ". The rig was saturated: latency includes waiting for CPU"
    return text
