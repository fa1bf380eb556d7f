"""The console's closing tables of a run: figures against SLOs, steady state, failovers."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.checks import CheckResult
from harness.faults.effects import effect_verdicts
from harness.metrics import RunMetrics
from harness.rig import describe
from harness.runner import RunResult
from harness.verdicts import SloResult, Verdict

LATE_NOTICE_MS = 250.0
STYLE = {
    Verdict.VALID: "green",
    Verdict.UNKNOWN: "yellow",
    Verdict.INVALID: "bold red",
    Verdict.NOT_APPLICABLE: "dim",
}


def _figure(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}{unit}" if abs(value) >= 1 or value == 0 else f"{value:.4f}{unit}"


def print_result(console: Console, result: RunResult) -> None:
    if result.metrics is not None:
        _print_figures(console, result.metrics, result.slos)
        _print_failovers(console, result.metrics)
    _print_late_faults(console, result)
    _print_unproven_faults(console, result)
    for steady in result.steady:
        problems = "; ".join(steady.problems) or "within tolerance"
        context = f"; rig: {describe(steady.rig)}" if steady.rig and steady.problems else ""
        console.print(
            f"steady state {steady.name}: {_verdict(steady.verdict)} "
            + escape(f"({steady.requests} requests, {problems}{context})")
        )
    if result.rig:
        console.print(f"rig during load: {describe(result.rig)}")
    if result.checks:
        _print_checks(console, result.checks)
    if result.summary is not None:
        print_measurement_warnings(console, result.summary.measurement_warnings)
    for error in result.errors:
        console.print(f"[bold red]harness error:[/] {escape(error)}")
    console.print(f"verdict: {_verdict(result.verdict)}  results: {escape(str(result.run_dir))}")


def _verdict(verdict: Verdict) -> str:
    return f"[{STYLE[verdict]}]{verdict.value}[/]"


def _print_figures(console: Console, metrics: RunMetrics, slos: list[SloResult]) -> None:
    figures = Table(title="recovery figures")
    for column in ("metric", "value", "SLO", "verdict"):
        figures.add_column(column)
    judged = {slo.metric: slo for slo in slos}
    for metric, value in metrics.values().items():
        slo = judged.pop(metric, None)
        verdict = _verdict(slo.verdict) if slo else "[dim]no SLO[/]"
        figures.add_row(metric, _figure(value), slo.bound_text if slo else "", verdict)
    for slo in judged.values():  # the downtime budget
        figures.add_row(slo.metric, _figure(slo.value), slo.bound_text, _verdict(slo.verdict))
    console.print(figures)


def _print_failovers(console: Console, metrics: RunMetrics) -> None:
    if metrics.failovers:
        failovers = Table(title="leader failovers")
        for column in ("fault", "cluster", "old leader", "new leader", "failover ms", "± ms"):
            failovers.add_column(column)
        failovers.add_column("first commit ms")
        for f in metrics.failovers:
            failovers.add_row(
                f"{f.fault_index}.{f.repeat}",
                escape(f.cluster),
                escape(f.old_leader),
                escape(f.new_leader or "none"),
                _figure(f.failover_ms),
                _figure(f.error_bound_ms),
                _figure(f.first_commit_ms),
            )
        console.print(failovers)
    _print_losses(console, metrics)
    if metrics.errors:
        console.print(
            "errors by kind: "
            + ", ".join(f"{kind}={count}" for kind, count in sorted(metrics.errors.items()))
        )


def _print_losses(console: Console, metrics: RunMetrics) -> None:
    """Every leadership loss, a re-election of the same node too (harness/leadership.py)."""
    if not metrics.leadership_losses:
        return
    losses = Table(title="leadership losses")
    for column in ("cluster", "leader, term", "lost by", "new leader, term", "leaderless ms"):
        losses.add_column(column)
    for loss in metrics.leadership_losses:
        new = f"{loss.new_leader} {loss.new_term}" if loss.new_leader else "none yet"
        losses.add_row(
            escape(loss.cluster),
            escape(f"{loss.old_leader} {loss.old_term}"),
            loss.sign,
            escape(new + (" (same node)" if loss.same_node else "")),
            _figure(loss.leaderless_ms),
        )
    console.print(losses)


def print_measurement_warnings(console: Console, warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"[yellow]measurement: {escape(warning)}[/]")


def _print_late_faults(console: Console, result: RunResult) -> None:
    for fault in result.history.faults if result.history else []:
        late_ms = fault.detail.get("late_ms")
        if fault.phase == "applied" and isinstance(late_ms, float) and late_ms > LATE_NOTICE_MS:
            # Usually the heal before it was slow; this fault's window was that much shorter.
            console.print(
                f"[yellow]fault {fault.fault_index}.{fault.repeat} ({fault.fault_type}) went in "
                f"{late_ms:,.0f} ms behind schedule[/]"
            )


def _print_unproven_faults(console: Console, result: RunResult) -> None:
    """Every fault application not seen to act: each one is why the verdict is unknown."""
    for effect in effect_verdicts(result.history.faults if result.history else []):
        if effect.verdict is not Verdict.VALID:
            console.print(f"[yellow]{escape(effect.explanation)}[/]")


def _print_checks(console: Console, results: list[CheckResult]) -> None:
    checks = Table(title="safety checks")
    checks.add_column("check", no_wrap=True)
    checks.add_column("verdict", no_wrap=True)
    checks.add_column("first violations / explanation", overflow="fold")
    for check in results:
        # The counts are in summary.json and report.html; the console keeps to the verdict
        # and its evidence so the table stays readable in an 80-column CI log.
        evidence = "; ".join(check.violations[:3]) or check.explanation
        checks.add_row(check.name, _verdict(check.verdict), escape(evidence))
    console.print(checks)
