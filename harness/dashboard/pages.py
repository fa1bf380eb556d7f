"""The pages of the dashboard site: index, one per scenario, releases.

Every link is relative to the site directory, so the site works opened from disk, copied
along with the results root, or served by any static web server.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from harness.catalog import RunEntry
from harness.dashboard.figures import trend_caption, trend_figure
from harness.dashboard.suites import SuiteRun
from harness.dashboard.trends import (
    TREND_METRICS,
    passed,
    release_label,
    release_order,
    scenario_trends,
    summarize_releases,
)
from harness.report.html import Raw, escape, figure_html, page, table_html, verdict_badge
from harness.store.summary import SUMMARY_FILE

RUN_REPORT = "report.html"
RECENT_RUNS = 50
RECENT_SUITE_RUNS = 30
FAILURE_CHARS = 90
SHORT_METRIC = {"failover_ms": "failover", "recovery_ms": "recovery", "downtime_ms": "downtime"}


@dataclass
class Site:
    directory: Path  # where the site will live: links are relative to it
    entries: list[RunEntry]  # newest first
    suite_runs: list[SuiteRun]  # newest first
    _by_scenario: dict[str, list[RunEntry]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._by_scenario.setdefault(entry.scenario, []).append(entry)

    @property
    def scenarios(self) -> list[str]:
        return sorted(self._by_scenario)

    def runs_of(self, scenario: str) -> list[RunEntry]:
        return self._by_scenario.get(scenario, [])

    def link(self, target: Path) -> str:
        return quote(Path(os.path.relpath(target, self.directory)).as_posix())

    def run_link(self, entry: RunEntry) -> str:
        """The run's report, or its summary.json until a report is written."""
        report = entry.path / RUN_REPORT
        return self.link(report if report.exists() else entry.path / SUMMARY_FILE)

    @staticmethod
    def scenario_file(scenario: str) -> str:
        return f"scenario-{re.sub(r'[^A-Za-z0-9_.-]', '_', scenario)}.html"


# --- pages -------------------------------------------------------------------------------------


def index_page(site: Site) -> str:
    body = [
        _nav(site, "index.html"),
        _headline(site),
        "<h2>Suite runs</h2>",
        _suites_table(site) if site.suite_runs else _empty("No suite runs yet."),
        "<h2>Scenarios</h2>",
        _scenarios_table(site) if site.entries else _empty("No runs in the catalog yet."),
        f"<h2>Recent runs</h2><p>The newest {RECENT_RUNS} runs, all scenarios together.</p>",
        _runs_table(site, site.entries[:RECENT_RUNS], with_scenario=True),
    ]
    return page("hftchaos dashboard", "\n".join(body), subtitle=_subtitle(site))


def scenario_page(site: Site, scenario: str, limits: dict[str, float]) -> str:
    runs = site.runs_of(scenario)
    trends = scenario_trends(runs, limits)
    passes = sum(1 for entry in runs if passed(entry))
    slo_text = (
        ", ".join(
            f"{metric} <= {limit:g} ms"
            for metric, limit in limits.items()
            if metric in TREND_METRICS
        )
        or "none on these metrics"
    )
    body = [
        _nav(site, site.scenario_file(scenario)),
        f"<p>{len(runs)} run(s) across {len(release_order(runs))} release(s); "
        f"{passes} passed ({_percent(passes / len(runs) if runs else None)}). "
        f"SLO limits (from the newest run): {escape(slo_text)}.</p>",
        "<h2>Failover, recovery and downtime over time</h2>",
        figure_html(
            trend_figure(trends),
            alt=f"{scenario}: failover, recovery and downtime per run and median per release",
            caption=trend_caption(trends),
        ),
        "<h2>Runs</h2>",
        _runs_table(site, runs, with_scenario=False),
    ]
    return page(f"Scenario {scenario}", "\n".join(body), subtitle=_subtitle(site, runs))


def releases_page(site: Site) -> str:
    body = [_nav(site, "releases.html")]
    summaries = summarize_releases(site.entries)
    if not summaries:
        body.append(_empty("No runs in the catalog yet."))
    for summary in summaries:
        body.append(
            f"<h2>{escape(summary.release)}</h2><p>{summary.runs} run(s), "
            f"{summary.passed} passed ({_percent(summary.pass_rate)}); runs from "
            f"{escape(_time(summary.first_run_at))} to {escape(_time(summary.last_run_at))}.</p>"
        )
        rows = [
            [
                _nowrap(_a(site.scenario_file(stats.scenario), stats.scenario)),
                stats.runs,
                _percent(stats.pass_rate),
                *(_ms(stats.medians[metric]) for metric in TREND_METRICS),
            ]
            for stats in summary.scenarios
        ]
        headers = ["scenario", "runs", "pass rate"]
        headers += [f"median {SHORT_METRIC[metric]} (ms)" for metric in TREND_METRICS]
        body.append(table_html(headers, rows))
    return page("Releases", "\n".join(body), subtitle=_subtitle(site))


# --- sections ----------------------------------------------------------------------------------


def _nav(site: Site, current: str) -> str:
    def item(href: str, text: str) -> str:
        if href == current:
            return f'<strong aria-current="page">{escape(text)}</strong>'
        return _a(href, text)

    main = " | ".join([item("index.html", "Overview"), item("releases.html", "Releases")])
    scenarios = " &middot; ".join(
        _nowrap(item(site.scenario_file(name), name)).html for name in site.scenarios
    )
    return (
        f'<nav class="dashboard-nav"><p>{main}</p>'
        + (f"<p>Scenarios: {scenarios}</p>" if scenarios else "")
        + "</nav>"
    )


def _headline(site: Site) -> str:
    passes = sum(1 for entry in site.entries if passed(entry))
    run_stats = [
        _stat(str(len(site.entries)), "", "runs catalogued"),
        _stat(_percent(passes / len(site.entries) if site.entries else None), "", "runs passed"),
        _stat(str(len(site.scenarios)), "", "scenarios"),
        _stat(str(len(release_order(site.entries))), "", "releases"),
    ]
    if not site.suite_runs:
        note = (
            '<p class="note">No suite runs yet: <code>hftchaos suite FILE</code> records one.</p>'
        )
        return note + '<div class="stats">' + "".join(run_stats) + "</div>"
    latest = site.suite_runs[0]
    budget = _duration(latest.annual_downtime_budget_s)
    value, unit = _duration_parts(latest.projected_annual_downtime_s)
    suite_stats = [
        _stat(verdict_badge(latest.verdict, large=True), "", "latest suite verdict", raw=True),
        _stat(_availability(latest.availability).rstrip("%"), "%", "availability over the suite"),
        _stat(value, unit, f"projected annual downtime; budget {budget}"),
    ]
    return (
        f"<p>Latest suite run: {_a(site.link(latest.report), latest.suite)} of release "
        f"<strong>{escape(latest.release or 'unlabelled')}</strong>, started "
        f"{escape(_time(latest.started_at))}; projected downtime {_budget(latest)}.</p>"
        + '<div class="stats">'
        + "".join(suite_stats)
        + '</div><div class="stats">'
        + "".join(run_stats)
        + "</div>"
    )


def _stat(value: str, unit: str, label: str, raw: bool = False) -> str:
    shown = value if raw else escape(value)
    unit_html = f'<span class="unit">{escape(unit)}</span>' if unit else ""
    return (
        f'<div class="stat"><div class="value">{shown}{unit_html}</div>'
        f'<div class="label">{escape(label)}</div></div>'
    )


def _budget(suite_run: SuiteRun) -> str:
    within = suite_run.within_budget
    if within is None:
        return "against an unknown budget"
    return "<strong>within budget</strong>" if within else "<strong>over budget</strong>"


def _suites_table(site: Site) -> str:
    rows = [
        [
            _nowrap(escape(_time(run.started_at))),
            run.suite,
            _nowrap(escape(run.release or "unlabelled")),
            Raw(verdict_badge(run.verdict)),
            _availability(run.availability),
            f"{_duration(run.projected_annual_downtime_s)} / "
            f"{_duration(run.annual_downtime_budget_s)}",
            len(run.runs),
            Raw(_a(site.link(run.report), "suite report")),
        ]
        for run in site.suite_runs[:RECENT_SUITE_RUNS]
    ]
    headers = [
        "started (UTC)",
        "suite",
        "release",
        "verdict",
        "availability",
        "annual downtime / budget",
        "runs",
        "report",
    ]
    return table_html(headers, rows)


def _scenarios_table(site: Site) -> str:
    rows: list[list[object]] = []
    for scenario in site.scenarios:
        runs = site.runs_of(scenario)
        latest = runs[0]
        passes = sum(1 for entry in runs if passed(entry))
        rows.append(
            [
                _nowrap(_a(site.scenario_file(scenario), scenario)),
                len(runs),
                _percent(passes / len(runs)),
                Raw(verdict_badge(latest.verdict)),
                *(_ms(latest.metrics.get(metric)) for metric in TREND_METRICS),
            ]
        )
    headers = ["scenario", "runs", "pass rate", "latest verdict"]
    headers += [f"latest {SHORT_METRIC[metric]} (ms)" for metric in TREND_METRICS]
    return table_html(headers, rows)


def _runs_table(site: Site, runs: Sequence[RunEntry], with_scenario: bool) -> str:
    if not runs:
        return _empty("No runs.")
    rows: list[list[object]] = []
    for entry in runs:
        link = site.run_link(entry)
        row: list[object] = [_nowrap(escape(_time(entry.started_at)))]
        if with_scenario:
            row.append(_nowrap(_a(site.scenario_file(entry.scenario), entry.scenario)))
        row += [
            _nowrap(escape(release_label(entry))),
            Raw(verdict_badge(entry.verdict)),
            *(_ms(entry.metrics.get(metric)) for metric in TREND_METRICS),
            _failures_cell(entry),
            Raw(_a(link, "report" if link.endswith(RUN_REPORT) else "summary.json")),
        ]
        rows.append(row)
    headers = ["started (UTC)"] + (["scenario"] if with_scenario else [])
    headers += ["release", "verdict"]
    headers += [f"{SHORT_METRIC[metric]} (ms)" for metric in TREND_METRICS]
    headers += ["what broke", "run"]
    return table_html(headers, rows)


# --- formatting --------------------------------------------------------------------------------


def _subtitle(site: Site, runs: Sequence[RunEntry] | None = None) -> str:
    runs = site.entries if runs is None else runs
    built = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    newest = f"newest run {_time(runs[0].started_at)}" if runs else "no runs yet"
    return f"{newest}; built {built}"


def _failures_cell(entry: RunEntry) -> Raw:
    """The first failure, shortened; all of them on hover, and in the run's report."""
    if not entry.failures:
        return Raw("")
    first = entry.failures[0]
    if len(first) > FAILURE_CHARS:
        first = first[: FAILURE_CHARS - 3].rstrip() + "..."
    more = len(entry.failures) - 1
    shown = first + (f" (+{more} more)" if more else "")
    return Raw(
        f'<span style="display: block; min-width: 20em" '
        f'title="{escape(chr(10).join(entry.failures))}">{escape(shown)}</span>'
    )


def _nowrap(html_text: str) -> Raw:
    # Dates and scenario names broken over two lines make a table twice as tall to scan.
    return Raw(f'<span style="white-space: nowrap">{html_text}</span>')


def _a(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _time(iso: str | None) -> str:
    return "-" if not iso else iso.replace("T", " ").replace("+00:00", "Z")


def _ms(value: float | None) -> float | Raw:
    # A number, so the table right-aligns it; rounded because a run is not that precise.
    if value is None:
        return Raw('<span style="display: block; text-align: right">-</span>')
    return round(value, 1)


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.0%}"


def _availability(fraction: float | None) -> str:
    # Availability lives in the nines: show enough digits to tell 99.99% from 99.9%.
    return "-" if fraction is None else f"{fraction * 100:.4f}%"


def _duration(seconds: float | None) -> str:
    value, unit = _duration_parts(seconds)
    return f"{value} {unit}".strip()


def _duration_parts(seconds: float | None) -> tuple[str, str]:
    if seconds is None:
        return "-", ""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}", "h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}", "min"
    return f"{seconds:.1f}", "s"
