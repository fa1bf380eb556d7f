"""The per-run HTML report: `write_run_report(run_dir)` turns a stored run (summary.json, the
Parquet history, scenario.yaml) into one self-contained `report.html` beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.report import figures
from harness.report.html import Raw, escape, figure_html, page, table_html, verdict_badge
from harness.report.leadership import leadership_html
from harness.report.request_pieces import last_end_ns
from harness.report.run_data import (
    NS_PER_S,
    PERCENTILE_LABELS,
    FaultWindow,
    RunData,
    fault_windows,
    leader_intervals,
    load_run,
    load_start_ns,
    phase_percentiles,
    summary_percentiles,
    throughput_per_s,
    trouble_span,
)
from harness.rig import describe
from harness.store.atomic import write_text_atomically
from harness.store.summarise import rig_load
from harness.store.summary import FaultSummary, GitFacts, RunStatus, RunSummary
from harness.verdicts import Verdict

REPORT_FILE = "report.html"
DOWNTIME_BUDGET = "downtime_budget_ms"  # the SLO verdicts.judge_slos makes of the budget
NOT_RECORDED = '<p class="note">not recorded</p>'
# The big numbers at the top of the report, in this order.
KEY_FIGURES = (
    ("failover_ms", "failover", "ms"),
    ("downtime_ms", "downtime", "ms"),
    ("recovery_ms", "recovery", "ms"),
    ("error_rate", "error rate", "%"),
    ("latency_p99_ms", "p99 latency", "ms"),
)


def write_run_report(run_dir: Path) -> Path:
    """Write `<run_dir>/report.html` (atomically) and return its path."""
    data = load_run(run_dir)
    path = data.run_dir / REPORT_FILE
    write_text_atomically(path, render(data))
    return path


def render(data: RunData) -> str:
    summary = data.summary
    scenario = _scenario(data.scenario_text)
    sections = [
        _overview(summary),
        _timeline_section(data),
        _percentile_section(data),
        _slo_section(summary),
        _failover_section(summary),
        _section("Leadership and the probe's precision", leadership_html(summary)),
        _checks_section(summary),
        _steady_state_section(summary),
        _fault_log_section(data),
        _errors_section(summary),
        _section("Scenario as run", _scenario_text(data.scenario_text)),
        _section("Versions", _versions(summary, data.run_dir)),
    ]
    name = summary.scenario
    description = " ".join(str(scenario.get("description") or "").split())
    return page(f"{name}: run report", "\n".join(sections), subtitle=description)


def _scenario(text: str | None) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _section(title: str, content: str) -> str:
    return f"<section><h2>{escape(title)}</h2>\n{content}\n</section>"


def number(value: object, digits: int = 1) -> str:
    """A figure for a table: thousands separators, `-` for missing."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    if isinstance(value, float) and 0 < abs(value) < 1:
        return f"{value:.4f}"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _overview(summary: RunSummary) -> str:
    facts = [
        ("release", summary.release or "unlabelled"),
        ("started", summary.started_at.replace("T", " ")),
        ("duration", f"{number(summary.duration_s)} s"),
        ("status", summary.status.value),
    ]
    fact_html = " &middot; ".join(
        f'<span class="muted">{escape(k)}</span> <strong>{escape(v)}</strong>' for k, v in facts
    )
    stats = "".join(_stat(summary.metric(key), label, unit) for key, label, unit in KEY_FIGURES)
    banner = ""
    if summary.status is not RunStatus.FINISHED:
        banner = (
            '<p class="banner">This run was <strong>aborted</strong>: figures and history '
            "may be partial.</p>"
        )
    return (
        f'<section class="overview"><div>{verdict_badge(summary.verdict.value, large=True)} '
        f'{fact_html}</div>{banner}<div class="stats">{stats}</div></section>'
    )


def _stat(value: float | None, label: str, unit: str) -> str:
    if value is None:
        shown = "-"
    elif unit == "%":
        shown = f"{value * 100:.2f}"  # error_rate is a fraction
    else:
        shown = f"{value:,.0f}"
    unit_html = f'<span class="unit">{escape(unit)}</span>' if shown != "-" else ""
    return (
        f'<div class="stat"><div class="value">{escape(shown)}{unit_html}</div>'
        f'<div class="label">{escape(label)}</div></div>'
    )


def _timeline_section(data: RunData) -> str:
    requests, probes = data.requests, data.frame("probes")
    origin = load_start_ns(data.frame("phases"), requests)
    if origin is None or (requests is None and probes is None):
        return _section("Timeline", NOT_RECORDED)
    ends = [origin]
    last_request_end = last_end_ns(requests)
    if last_request_end is not None:
        ends.append(last_request_end)
    if probes is not None:
        ends.append(int(probes["arrival_ns"].max()))
    nodes = sorted(str(n) for n in probes["node"].unique()) if probes is not None else []
    fig = figures.timeline_figure(
        requests,
        origin,
        throughput_per_s(requests, origin),
        leader_intervals(probes),
        fault_windows(data.frame("faults")),
        nodes,
        max(ends),
    )
    caption = (
        "Top: when each engine node reported itself leader (overlapping bars: two leaders at "
        "once). Middle: completed requests per "
        "second by outcome (100 ms bins). Bottom: each request's latency from its intended "
        "send time (corrected for coordinated omission); beyond "
        f"{figures.MAX_POINTS_PER_OUTCOME:,} requests of an outcome, its slowest half of that "
        "and an even sample of the rest, as the legend counts. Shaded: fault applied until "
        "healed."
    )
    return _section("Timeline", figure_html(fig, "run timeline", caption))


def _percentile_section(data: RunData) -> str:
    requests = data.requests
    if requests is None:
        return _section("Latency before, during and after the faults", NOT_RECORDED)
    phases = summary_percentiles(data.summary)
    if phases is None:
        windows = fault_windows(data.frame("faults"))
        first: int | None = None
        recovered: int | None = None
        recovery = data.summary.recovery
        if recovery is not None or windows:
            first, recovered = trouble_span(windows, recovery, data.summary.metric("recovery_ms"))
        phases = phase_percentiles(requests, first, recovered)
    headers = ["phase", "acked requests", *PERCENTILE_LABELS, "max"]
    rows = [
        [
            p.phase,
            p.count,
            *(f"{number(v)} ms" if v is not None else "-" for v in p.values_ms.values()),
        ]
        for p in phases
    ]
    note = (
        '<p class="note">Acknowledged requests by intended send time: before the first fault, '
        "from it until recovery, after recovery.</p>"
    )
    fig = figures.percentile_figure(phases)
    return _section(
        "Latency before, during and after the faults",
        note + figure_html(fig, "latency percentiles per phase") + table_html(headers, rows),
    )


def _slo_section(summary: RunSummary) -> str:
    slos = summary.slos
    content = NOT_RECORDED
    if slos:
        rows = [
            [
                slo.metric,
                number(slo.value),
                slo.bound_text,
                Raw(verdict_badge(slo.verdict.value)),
                slo.explanation,
            ]
            for slo in slos
        ]
        classes = ["fail" if slo.verdict is Verdict.INVALID else "" for slo in slos]
        content = table_html(["metric", "value", "limit", "verdict", "explanation"], rows, classes)
    return _section("SLOs", content + _downtime_budget(summary))


def _downtime_budget(summary: RunSummary) -> str:
    """The budget as the run judged it: the downtime_budget_ms SLO (judge_slos adds it)."""
    downtime = summary.metric("downtime_ms")
    budget = next((slo.bound.max for slo in summary.slos if slo.metric == DOWNTIME_BUDGET), None)
    if downtime is None or budget is None or budget <= 0:
        return '<p class="note">downtime budget: not recorded</p>'
    used = downtime / budget
    state = "over" if used > 1 else "within"
    return (
        f"<h3>Downtime vs budget</h3><p>{downtime:,.1f} ms of {budget:,.1f} ms "
        f"({used:.0%} of the budget, {state})</p>"
        f'<div class="meter {state}"><div style="width: {min(used, 1.0) * 100:.1f}%"></div></div>'
    )


def _failover_section(summary: RunSummary) -> str:
    failovers = summary.failovers
    if not failovers:
        return _section("Leader failovers", '<p class="note">no fault removed the leader</p>')
    rows = [
        [
            fault_name(f.fault, f.repeat),
            f.cluster or "-",
            f.old_leader,
            f.new_leader or "none",
            number(f.failover_ms),
            number(f.error_bound_ms),
            number(f.first_commit_ms),
            (f.estimator or "-").replace("_", " "),
        ]
        for f in failovers
    ]
    headers = ["fault", "cluster", "old leader", "new leader", "failover ms", "± ms"]
    headers += ["first commit ms", "placed by"]
    classes = ["fail" if not f.new_leader else "" for f in failovers]
    return _section("Leader failovers", table_html(headers, rows, classes))


def _checks_section(summary: RunSummary) -> str:
    checks = summary.checks
    if not checks:
        return _section("Safety checks", NOT_RECORDED)
    rows = []
    for check in checks:
        counts = ", ".join(f"{k}={v}" for k, v in check.counts.items())
        evidence = "; ".join(check.violations[:5]) or "none"
        rows.append(
            [
                check.name,
                Raw(verdict_badge(check.verdict.value)),
                counts,
                evidence,
                check.explanation,
            ]
        )
    classes = ["fail" if c.verdict is Verdict.INVALID else "" for c in checks]
    headers = ["check", "verdict", "counts", "first violations", "explanation"]
    return _section("Safety checks", table_html(headers, rows, classes))


def _steady_state_section(summary: RunSummary) -> str:
    windows = summary.steady_state
    if not windows:
        return _section("Steady state", NOT_RECORDED)
    rows = [
        [
            s.window,
            Raw(verdict_badge(s.verdict.value)),
            s.requests,
            _percent(s.success_rate),
            number(s.latency_p99_ms),
            "; ".join(s.problems) or "within tolerance",
            number(s.rig.host_busy_pct_mean if s.rig else None),
            number(s.rig.host_steal_pct_max if s.rig else None),
        ]
        for s in windows
    ]
    headers = [
        "window",
        "verdict",
        "requests",
        "success rate",
        "p99 ms",
        "problems",
        "host CPU busy %",
        "max CPU steal %",
    ]
    classes = ["fail" if s.verdict is Verdict.INVALID else "" for s in windows]
    return _section("Steady state", table_html(headers, rows, classes) + _rig_note(summary))


def _rig_note(summary: RunSummary) -> str:
    """The machine's load over the whole order flow: context for latency, not a verdict."""
    if summary.rig is None:
        return ""
    return f'<p class="note">During the load: {escape(describe(rig_load(summary.rig)))}.</p>'


def _percent(fraction: float | None) -> str:
    return f"{fraction:.2%}" if fraction is not None else "-"


def _fault_log_section(data: RunData) -> str:
    windows = fault_windows(data.frame("faults"))
    if not windows:
        return _section("Fault log", NOT_RECORDED)
    origin = load_start_ns(data.frame("phases"), data.requests) or windows[0].applied_ns
    summaries = {(fault.fault, fault.repeat): fault for fault in data.summary.faults}
    rows = [
        [
            *_fault_row(window, origin),
            _leaders(summaries.get((window.fault_index, window.repeat))),
            *_utc(summaries.get((window.fault_index, window.repeat))),
            _effect(summaries.get((window.fault_index, window.repeat))),
        ]
        for window in windows
    ]
    headers = ["fault", "type", "targets", "applied s", "healed s", "lasted s", "detail"]
    headers += ["leader before → after", "applied (UTC)", "healed (UTC)", "effect seen"]
    note = (
        '<p class="note">Times in seconds from load start; UTC to line them up with the '
        "system's own logs. A fault not seen to act makes the run unknown: it proves nothing.</p>"
    )
    warnings = "".join(
        f'<p class="note">Warning before the run: {escape(text)}</p>'
        for text in data.summary.warnings
    )
    return _section("Fault log", note + warnings + table_html(headers, rows))


def _effect(fault: FaultSummary | None) -> str:
    """Whether the fault was seen to act, and what was seen (harness/faults/effects.py)."""
    if fault is None or fault.effect is None:
        return "not checked"
    evidence = json.dumps(fault.effect.evidence, sort_keys=True)
    return f"{fault.effect.status.replace('_', ' ')}: {fault.effect.reason} {evidence}"


def _leaders(fault: FaultSummary | None) -> str:
    """Who led before the fault and by its heal; "-" where the summary (version 1) has not."""
    if fault is None:
        return "-"
    return f"{fault.leader_before or 'none'} → {fault.leader_after or 'none'}"


def _utc(fault: FaultSummary | None) -> list[str]:
    """When it was applied and healed in UTC; "-" for a run recorded without clock anchors."""
    if fault is None:
        return ["-", "-"]
    return [fault.applied_utc or "-", fault.healed_utc or "-"]


def _fault_row(window: FaultWindow, origin: int) -> list[object]:
    applied = (window.applied_ns - origin) / NS_PER_S
    healed = (window.healed_ns - origin) / NS_PER_S if window.healed_ns is not None else None
    merged = {**window.detail, **window.heal_detail}
    detail = ", ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in sorted(merged.items())
    )
    return [
        fault_name(window.fault_index, window.repeat),
        window.fault_type,
        ", ".join(window.targets) or "-",
        f"{applied:.3f}",
        f"{healed:.3f}" if healed is not None else "never healed",
        f"{healed - applied:.3f}" if healed is not None else "-",
        detail,
    ]


def fault_name(index: int, repeat: int) -> str:
    """#0 for a fault of the scenario, `#0 repeat 2` for the third application of a repeated one."""
    return f"#{index}" if not repeat else f"#{index} repeat {repeat}"


def _errors_section(summary: RunSummary) -> str:
    by_kind = sorted(summary.errors_by_kind.items(), key=lambda kind: -kind[1])
    content = (
        table_html(["kind", "requests"], by_kind)
        if by_kind
        else '<p class="note">no failed requests</p>'
    )
    if summary.errors:
        items = "".join(f"<li>{escape(error)}</li>" for error in summary.errors)
        content += f"<h3>Harness errors</h3><ul>{items}</ul>"
    return _section("Errors by kind", content)


def _scenario_text(text: str | None) -> str:
    return f"<pre>{escape(text)}</pre>" if text else NOT_RECORDED


def _versions(summary: RunSummary, run_dir: Path) -> str:
    host = summary.host.model_dump(exclude_none=True)
    records = summary.records.model_dump()
    rows = [
        ["harness commit", _commit(summary.harness)],
        ["target", f"{summary.target.name or '-'} {_commit(summary.target)}"],
        ["release", summary.release or "unlabelled"],
        ["seed", str(summary.seed) if summary.seed is not None else "-"],
        ["host", ", ".join(f"{k}={v}" for k, v in host.items()) or "-"],
        *_backend_rows(summary),
        ["records", ", ".join(f"{k}={v}" for k, v in records.items() if v)],
        ["summary", f"schema version {summary.schema_version}"],
        ["run directory", str(run_dir)],
    ]
    return table_html(["what", "value"], rows)


def _backend_rows(summary: RunSummary) -> list[list[str]]:
    """Where the services ran, for a backend that said (Docker: engine version, image ids)."""
    backend = summary.backend
    if backend is None:
        return []
    rows = [["backend", f"{backend.name}, engine {backend.engine_version or '-'}"]]
    rows += [[f"image of {name}", image] for name, image in sorted(backend.images.items())]
    return rows


def _commit(facts: GitFacts) -> str:
    commit = facts.commit or "unknown commit"
    dirty = facts.dirty
    return f"{commit}{' (dirty)' if dirty else ''}{' (dirty: unknown)' if dirty is None else ''}"
