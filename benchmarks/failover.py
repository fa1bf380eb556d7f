"""Leader failover under load (performance issue, goals 4 and 5), on the local backend:

- `failover_ms_p50` / `failover_ms_p99`: 30 SIGKILLs of the Raft leader, one every 4 s (each
  restarted 1.5 s later), under 1,000 orders/s, as one `hftchaos run` of a scenario with a
  repeated kill: the harness's own failover figure, from the kill to the new leader. (An
  earlier version ran 10: a 30-kill run had not finished after 15 minutes. The time went into
  judging recovery, one pass over every window per request, now a sliding window.)
- `first_commit_ms_p99`: from each kill to the first order acknowledged after it;
- `unprovoked_elections`: leadership losses no fault was aimed at, over the whole run (goal 4's
  "no election without a fault"; the issue asks for 10 minutes of steady load, this is the
  ~2 minutes of this run with its kills, stated in the conditions);
- `fidelity_ms_p99`: how far the harness's election instant is from the engines' own: each new
  leader's `ROLE <node> leader term=<t> mono_ns=<ns>` line, stamped by the engine when
  PySyncObj made it leader (the same CLOCK_MONOTONIC as the harness's, one host).

The reference's status carries `role_age_ms`, the same stamp the ROLE line prints, so the
fidelity figure measures how well the harness reads and places it (clock reads, rounding, a
sample from the wrong term), not an independent reference: tests/integration/
test_failover_agreement.py compares against the wire instead. --quick: 3 kills at 200/s.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
from pathlib import Path
from unittest import mock

from benchmarks.figures import Figure, Measurement
from harness import settings
from harness.metrics import NS_PER_MS, Failover
from harness.runner import run_scenario
from harness.send_lateness import send_lateness_ms

KILLS, RATE_PER_S = 30, 1_000
QUICK_KILLS, QUICK_RATE_PER_S = 3, 200
# Closed senders: with 64, every sender waited on the replies held up by each failover and the
# schedule slipped by seconds (Little's law: 64 / 40 ms is 1,600/s at best, less the stalls).
USERS = 256
EVERY_S, FIRST_AT_S, RESTART_AFTER_S = 4.0, 4.0, 1.5
ROLE_LINE = re.compile(r"^ROLE (\S+) leader term=(\d+) leader=\S+ mono_ns=(\d+)", re.MULTILINE)


def scenario_seconds(kills: int) -> float:
    # The load ends a few seconds after the last kill's restart.
    return FIRST_AT_S + (kills - 1) * EVERY_S + RESTART_AFTER_S + 5


def scenario_text(kills: int, rate_per_s: int) -> str:
    # Steady state is not judged here (the figures are the failovers), so its limits only
    # keep the validator content.
    duration_s = scenario_seconds(kills)
    return f"""\
name: bench-failover
description: Kill the Raft leader {kills} times under {rate_per_s} orders/s.
load: {{rate_per_s: {rate_per_s}, duration_s: {duration_s:g}, users: {USERS}}}
steady_state: {{window_s: 1.5, success_rate_min: 0.5, latency_p99_ms_max: 5000}}
faults:
  - type: kill
    at_s: {FIRST_AT_S:g}
    target: {{role: engine, select: leader}}
    restart_after_s: {RESTART_AFTER_S:g}
    repeat: {{times: {kills}, every_s: {EVERY_S:g}}}
checks: []
"""


def logged_elections(log_dir: Path) -> dict[tuple[str, int], int]:
    """(node, term) -> mono_ns of the engine's own ROLE line saying it became leader."""
    found: dict[tuple[str, int], int] = {}
    for log in log_dir.glob("n*.log"):
        for node, term, mono_ns in ROLE_LINE.findall(log.read_text(errors="replace")):
            found.setdefault((node, int(term)), int(mono_ns))
    return found


def fidelity_ms(failover: Failover, elections: dict[tuple[str, int], int]) -> float | None:
    """The harness's election instant minus the engine's own, for the first term the new
    leader led in after the kill (None when the log has no such line)."""
    if failover.elected_ns is None or failover.new_leader is None:
        return None
    after = [
        (term, mono_ns)
        for (node, term), mono_ns in elections.items()
        if node == failover.new_leader and mono_ns >= failover.injected_ns
    ]
    if not after:
        return None
    return (failover.elected_ns - min(after)[1]) / NS_PER_MS


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def measure(quick: bool) -> Measurement:
    kills, rate = (QUICK_KILLS, QUICK_RATE_PER_S) if quick else (KILLS, RATE_PER_S)
    with tempfile.TemporaryDirectory(prefix="hftchaos-bench-failover-") as scratch:
        work = Path(scratch)
        scenario = work / "bench-failover.yaml"
        scenario.write_text(scenario_text(kills, rate))
        with mock.patch.dict(os.environ, {settings.RESULTS.variable: str(work / "results")}):
            result = run_scenario(scenario, "bench", lambda _message: None)
        if result.metrics is None:
            raise RuntimeError(f"the run was not judged: {result.errors}")
        failovers = result.metrics.failovers
        elections = logged_elections(result.run_dir / "logs")
    failover_ms = [f.failover_ms for f in failovers if f.failover_ms is not None]
    first_commit_ms = [f.first_commit_ms for f in failovers if f.first_commit_ms is not None]
    unprovoked = sum(1 for loss in result.metrics.leadership_losses if loss.fault_index is None)
    requests = result.history.requests if result.history else []
    late_ms = send_lateness_ms(requests)
    fidelity = [d for f in failovers if (d := fidelity_ms(f, elections)) is not None]
    conditions = {
        "backend": "local",
        "topology": "reference",
        "kills": kills,
        "rate_per_s": rate,
        "every_s": EVERY_S,
        "users": USERS,
    }

    def figure(name: str, value: float | None, goal: str, measured: int) -> Figure:
        return Figure(
            name=name,
            value=value,
            unit="ms",
            better="lower",
            conditions={**conditions, "measured": measured},
            goal=goal,
        )

    figures = [
        figure("failover_ms_p50", percentile(failover_ms, 0.5), "<= 150", len(failover_ms)),
        figure("failover_ms_p99", percentile(failover_ms, 0.99), "<= 300", len(failover_ms)),
        figure(
            "first_commit_ms_p99",
            percentile(first_commit_ms, 0.99),
            "<= 350",
            len(first_commit_ms),
        ),
        Figure(
            name="unprovoked_elections",
            value=unprovoked,
            unit="count",
            better="lower",
            conditions={**conditions, "load_s": scenario_seconds(kills)},
            goal="0 (in 10 min)",
        ),
        figure(
            "fidelity_ms_p99",
            percentile([abs(d) for d in fidelity], 0.99),
            "<= 1",
            len(fidelity),
        ),
    ]
    notes = []
    if len(failover_ms) < kills:
        notes.append(f"{kills - len(failover_ms)} of {kills} kills had no measured failover")
    return Measurement(
        figures,
        conditions=conditions,
        details={
            "failover_ms": failover_ms,
            "first_commit_ms": first_commit_ms,
            "fidelity_ms": fidelity,
            "error_rate": result.metrics.error_rate,
            "send_lateness_ms_p99": percentile(late_ms, 0.99),
            "send_lateness_ms_max": round(max(late_ms, default=0.0), 1),
            "fidelity_median_ms": round(statistics.median(fidelity), 3) if fidelity else None,
            # Who took over from whom, per kill: a new leader that was the previous kill's
            # victim had restarted only seconds before (its replay shows in first_commit_ms).
            "leaders": [[f.old_leader, f.new_leader] for f in failovers],
        },
        notes=notes,
    )
