"""suite-report.html: the pass/fail matrix, availability over the suite, downtime by fault
class against the budget, the projected annual downtime with its model spelled out, and a link
to each run's own report. Built with the shared page helpers so it looks like the run reports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.report.html import Raw, escape, page, table_html, verdict_badge
from harness.store.atomic import write_text_atomically
from harness.suite.figures import class_figure, projection_figure
from harness.suite.loader import PlannedScenario
from harness.suite.outcome import CaseState, RunOutcome
from harness.suite.projection import Projection, availability, format_duration, project
from harness.suite.runner import SuiteResult

RUN_REPORT_FILE = "report.html"


@dataclass(frozen=True)
class MatrixRow:
    scenario: str
    fault_class: str
    planned: int  # repeats the suite asked for
    cells: list[RunOutcome | None]  # one per repeat asked for; None: it did not run


def pass_fail_matrix(
    outcomes: Sequence[RunOutcome], planned: Sequence[PlannedScenario]
) -> tuple[int, list[MatrixRow]]:
    """Scenario x repeat in the suite's order, scenarios that never ran included; returns
    (repeat columns, rows)."""
    rows = {p.name: MatrixRow(p.name, p.fault_class, p.repeat, [None] * p.repeat) for p in planned}
    for outcome in outcomes:
        row = rows.get(outcome.scenario)
        if row is not None and outcome.repeat <= row.planned:
            row.cells[outcome.repeat - 1] = outcome
    return max((row.planned for row in rows.values()), default=0), list(rows.values())


def _run_link(outcome: RunOutcome, suite_dir: Path) -> str:
    """A relative link to the run's report.html, or to its directory while it has none."""
    if outcome.run_dir is None:
        return ""
    report = outcome.run_dir / RUN_REPORT_FILE
    target = report if report.exists() else outcome.run_dir
    return os.path.relpath(target, suite_dir)


def _cell(outcome: RunOutcome | None, suite_dir: Path) -> str:
    if outcome is None:
        return '<span class="muted">not run</span>'
    badge = verdict_badge("error" if outcome.state is CaseState.ERROR else outcome.verdict)
    downtime = outcome.downtime_ms
    detail = f"<br><small>{downtime:.0f} ms down</small>" if downtime is not None else ""
    link = _run_link(outcome, suite_dir)
    if link:
        return f'<a href="{escape(link)}">{badge}</a>{detail}'
    return badge + detail


def _matrix_html(
    outcomes: Sequence[RunOutcome], planned: Sequence[PlannedScenario], suite_dir: Path
) -> str:
    columns, rows = pass_fail_matrix(outcomes, planned)
    headers = ["scenario", "fault class", *(f"run {n}" for n in range(1, columns + 1))]
    body = [
        [
            row.scenario,
            row.fault_class,
            *(Raw(_cell(c, suite_dir)) for c in row.cells),
            *([""] * (columns - row.planned)),  # repeats this scenario was not asked for
        ]
        for row in rows
    ]
    return table_html(headers, body)


def _ms(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "-"


def _stat(value: str, label: str) -> str:
    return (
        f'<div class="stat"><div class="value">{escape(value)}</div>'
        f'<div class="label">{escape(label)}</div></div>'
    )


def _summary_html(result: SuiteResult, projection: Projection) -> str:
    outcomes = result.outcomes
    states = [o.state for o in outcomes]
    measured = availability(outcomes)
    stats = [
        _stat(f"{measured:.4%}" if measured is not None else "-", "availability over the suite"),
        _stat(format_duration(projection.annual_s), "projected downtime a year (median)"),
        _stat(format_duration(projection.annual_p95_s), "projected downtime a year (p95)"),
        _stat(format_duration(projection.budget_s), "annual downtime budget"),
    ]
    if projection.baseline_s is not None:
        stats.append(_stat(format_duration(projection.baseline_s), "baseline (before)"))
    rows = [
        ["runs", f"{len(outcomes)} of {result.loaded.total_runs} planned ({result.status})"],
        [
            "passed / failed / harness errors",
            f"{states.count(CaseState.PASSED)} / {states.count(CaseState.FAILED)} / "
            f"{states.count(CaseState.ERROR)}",
        ],
        ["projection within the budget", "yes" if projection.within_budget else "NO"],
        ["availability", "1 - downtime / load time, over the runs that measured downtime"],
    ]
    if result.stopped_by:
        rows.append(["stopped by", result.stopped_by])
    if result.interrupted_by is not None:
        rows.append(["interrupted", str(result.interrupted_by) or "Ctrl-C"])
    return f'<div class="stats">{"".join(stats)}</div>' + table_html(["", "value"], rows)


def _model_html(projection: Projection) -> str:
    rows = [
        [
            c.fault_class,
            f"{c.incidents_per_year:g}" if c.incidents_per_year is not None else "not stated",
            str(c.runs),
            _ms(c.median_downtime_ms),
            _ms(c.p95_downtime_ms),
            format_duration(c.annual_s),
            format_duration(c.annual_p95_s),
        ]
        for c in projection.classes
    ]
    table = table_html(
        [
            "fault class",
            "incidents / year",
            "runs measured",
            "median downtime ms",
            "p95 downtime ms",
            "a year (median)",
            "a year (p95)",
        ],
        rows,
    )
    lines = "".join(f"<li>{escape(line)}</li>" for line in projection.explanation())
    return f"<ul>{lines}</ul>{table}"


def _runs_html(outcomes: Sequence[RunOutcome], suite_dir: Path) -> str:
    rows = []
    for o in outcomes:
        link = _run_link(o, suite_dir)
        rows.append(
            [
                Raw(
                    f'<a href="{escape(link)}">{escape(o.case_name)}</a>'
                    if link
                    else escape(o.case_name)
                ),
                o.fault_class,
                Raw(verdict_badge(o.verdict)),
                o.state.value,
                f"{o.duration_s:.1f}",
                _ms(o.downtime_ms),
                _ms(o.metric("failover_ms")),
                _ms(o.metric("recovery_ms")),
                Raw("<br>".join(escape(line) for line in o.failures) or "-"),
            ]
        )
    headers = [
        "run",
        "fault class",
        "verdict",
        "case",
        "took s",
        "downtime ms",
        "failover ms",
        "recovery ms",
        "what broke",
    ]
    classes = ["" if o.state is CaseState.PASSED else "fail" for o in outcomes]
    return table_html(headers, rows, classes)


def suite_report_html(result: SuiteResult, suite_dir: Path) -> str:
    projection = project(result.outcomes, result.loaded.suite.availability)
    measured = any(c.median_downtime_ms is not None for c in projection.classes)
    sections = [
        f"<p>{verdict_badge(result.verdict.value)} release "
        f"<b>{escape(result.release or '(none)')}</b>, {escape(result.started_at)} to "
        f"{escape(result.finished_at)}</p>",
        f"<p>{escape(result.loaded.suite.description)}</p>"
        if result.loaded.suite.description
        else "",
        "<h2>Summary</h2>",
        _summary_html(result, projection),
        "<h2>Pass/fail matrix</h2>",
        _matrix_html(result.outcomes, result.loaded.scenarios, suite_dir),
        "<h2>Downtime by fault class</h2>",
        class_figure(projection) if measured else "<p>no run measured its downtime</p>",
        "<h2>Projected annual downtime</h2>",
        projection_figure(projection),
        "<h3>The model</h3>",
        _model_html(projection),
        "<h2>Runs</h2>",
        _runs_html(result.outcomes, suite_dir),
    ]
    return page(
        f"suite {result.name}",
        "\n".join(section for section in sections if section),
        subtitle=f"{len(result.outcomes)} runs, release {result.release or '(none)'}",
    )


def write_suite_report(result: SuiteResult, suite_dir: Path, file_name: str) -> Path:
    path = suite_dir / file_name
    write_text_atomically(path, suite_report_html(result, suite_dir))
    return path
