"""The per-run HTML report: `write_run_report(run_dir)` turns a stored run (summary.json, the
Parquet history, scenario.yaml) into one self-contained `report.html` beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.report import figures
from harness.report.html import Raw, escape, figure_html, page, table_html, verdict_badge
from harness.report.run_data import (
    NS_PER_S,
    PERCENTILES,
    FaultWindow,
    RunData,
    fault_windows,
    leader_intervals,
    load_run,
    load_start_ns,
    phase_percentiles,
    throughput_per_s,
    trouble_span,
)
from harness.rig import RigLoad, describe
from harness.store.atomic import write_text_atomically

REPORT_FILE = "report.html"
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
        _slo_section(summary, scenario),
        _failover_section(summary),
        _checks_section(summary),
        _steady_state_section(summary),
        _fault_log_section(data),
        _errors_section(summary),
        _section("Scenario as run", _scenario_text(data.scenario_text)),
        _section("Versions", _versions(summary, data.run_dir)),
    ]
    name = str(summary.get("scenario", data.run_dir.parent.name))
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


def _overview(summary: dict[str, Any]) -> str:
    verdict = str(summary.get("verdict", "unknown"))
    status = str(summary.get("status", "unknown"))
    facts = [
        ("release", summary.get("release") or "unlabelled"),
        ("started", str(summary.get("started_at", "-")).replace("T", " ")),
        ("duration", f"{number(summary.get('duration_s'))} s"),
        ("status", status),
    ]
    fact_html = " &middot; ".join(
        f'<span class="muted">{escape(k)}</span> <strong>{escape(v)}</strong>' for k, v in facts
    )
    metrics = summary.get("metrics") or {}
    stats = "".join(_stat(metrics.get(key), label, unit) for key, label, unit in KEY_FIGURES)
    banner = ""
    if status != "finished":
        banner = (
            '<p class="banner">This run was <strong>aborted</strong>: figures and history '
            "may be partial.</p>"
        )
    return (
        f'<section class="overview"><div>{verdict_badge(verdict, large=True)} '
        f'{fact_html}</div>{banner}<div class="stats">{stats}</div></section>'
    )


def _stat(value: object, label: str, unit: str) -> str:
    if not isinstance(value, int | float):
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
    requests, probes = data.frame("requests"), data.frame("probes")
    origin = load_start_ns(data.frame("phases"), requests)
    if origin is None or (requests is None and probes is None):
        return _section("Timeline", NOT_RECORDED)
    ends = [origin]
    if requests is not None:
        ends.append(int(requests["end_ns"].max()))
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
        "send time (corrected for coordinated omission). Shaded: fault applied until healed."
    )
    return _section("Timeline", figure_html(fig, "run timeline", caption))


def _percentile_section(data: RunData) -> str:
    requests = data.frame("requests")
    if requests is None:
        return _section("Latency before, during and after the faults", NOT_RECORDED)
    windows = fault_windows(data.frame("faults"))
    first, recovered = None, None
    if windows:
        during = ((data.summary.get("latency_by_phase") or {}).get("during") or {}).get("count")
        recovery_ms = (data.summary.get("metrics") or {}).get("recovery_ms")
        first, recovered = trouble_span(
            windows, requests, during if isinstance(during, int) else None, recovery_ms
        )
    phases = phase_percentiles(requests, first, recovered)
    headers = ["phase", "acked requests", *(label for label, _ in PERCENTILES), "max"]
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


def _slo_section(summary: dict[str, Any], scenario: dict[str, Any]) -> str:
    slos = summary.get("slos") or []
    content = NOT_RECORDED
    if slos:
        rows = [
            [
                s.get("metric"),
                number(s.get("value")),
                s.get("limit"),
                Raw(verdict_badge(str(s.get("verdict")))),
                s.get("explanation"),
            ]
            for s in slos
        ]
        classes = ["fail" if s.get("verdict") == "invalid" else "" for s in slos]
        content = table_html(["metric", "value", "limit", "verdict", "explanation"], rows, classes)
    return _section("SLOs", content + _downtime_budget(summary, scenario))


def _downtime_budget(summary: dict[str, Any], scenario: dict[str, Any]) -> str:
    downtime = (summary.get("metrics") or {}).get("downtime_ms")
    budget = scenario.get("downtime_budget_ms")
    if not isinstance(downtime, int | float) or not isinstance(budget, int | float) or budget <= 0:
        return '<p class="note">downtime budget: not recorded</p>'
    used = downtime / budget
    state = "over" if used > 1 else "within"
    return (
        f"<h3>Downtime vs budget</h3><p>{downtime:,.1f} ms of {budget:,.1f} ms "
        f"({used:.0%} of the budget, {state})</p>"
        f'<div class="meter {state}"><div style="width: {min(used, 1.0) * 100:.1f}%"></div></div>'
    )


def _failover_section(summary: dict[str, Any]) -> str:
    failovers = summary.get("failovers") or []
    if not failovers:
        return _section("Leader failovers", '<p class="note">no fault removed the leader</p>')
    rows = [
        [
            fault_name(f.get("fault"), f.get("repeat")),
            f.get("old_leader"),
            f.get("new_leader") or "none",
            number(f.get("failover_ms")),
            number(f.get("first_commit_ms")),
        ]
        for f in failovers
    ]
    headers = ["fault", "old leader", "new leader", "failover ms", "first commit ms"]
    classes = ["fail" if not f.get("new_leader") else "" for f in failovers]
    return _section("Leader failovers", table_html(headers, rows, classes))


def _checks_section(summary: dict[str, Any]) -> str:
    checks = summary.get("checks")
    if not checks:
        return _section("Safety checks", NOT_RECORDED)
    rows = []
    for check in checks:
        counts = ", ".join(f"{k}={v}" for k, v in (check.get("counts") or {}).items())
        violations = check.get("violations") or []
        evidence = "; ".join(str(v) for v in violations[:5]) or "none"
        rows.append(
            [
                check.get("name"),
                Raw(verdict_badge(str(check.get("verdict")))),
                counts,
                evidence,
                check.get("explanation"),
            ]
        )
    classes = ["fail" if c.get("verdict") == "invalid" else "" for c in checks]
    headers = ["check", "verdict", "counts", "first violations", "explanation"]
    return _section("Safety checks", table_html(headers, rows, classes))


def _steady_state_section(summary: dict[str, Any]) -> str:
    results = summary.get("steady_state") or []
    if not results:
        return _section("Steady state", NOT_RECORDED)
    rows = [
        [
            s.get("window"),
            Raw(verdict_badge(str(s.get("verdict")))),
            s.get("requests"),
            _percent(s.get("success_rate")),
            number(s.get("latency_p99_ms")),
            "; ".join(s.get("problems") or []) or "within tolerance",
            number((s.get("rig") or {}).get("host_busy_pct_mean")),
            number((s.get("rig") or {}).get("host_steal_pct_max")),
        ]
        for s in results
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
    classes = ["fail" if s.get("verdict") == "invalid" else "" for s in results]
    return _section("Steady state", table_html(headers, rows, classes) + _rig_note(summary))


def _rig_note(summary: dict[str, Any]) -> str:
    """The machine's load over the whole order flow: context for latency, not a verdict."""
    rig = summary.get("rig")
    load = RigLoad.from_dict(rig) if isinstance(rig, dict) else None
    if load is None:
        return ""
    return f'<p class="note">During the load: {escape(describe(load))}.</p>'


def _percent(fraction: object) -> str:
    return f"{fraction:.2%}" if isinstance(fraction, int | float) else "-"


def _fault_log_section(data: RunData) -> str:
    windows = fault_windows(data.frame("faults"))
    if not windows:
        return _section("Fault log", NOT_RECORDED)
    origin = load_start_ns(data.frame("phases"), data.frame("requests")) or windows[0].applied_ns
    rows = [_fault_row(window, origin) for window in windows]
    headers = ["fault", "type", "targets", "applied s", "healed s", "lasted s", "detail"]
    note = '<p class="note">Times in seconds from load start.</p>'
    return _section("Fault log", note + table_html(headers, rows))


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


def fault_name(index: object, repeat: object) -> str:
    """#0 for a fault of the scenario, `#0 repeat 2` for the third application of a repeated one."""
    return f"#{index}" if not repeat else f"#{index} repeat {repeat}"


def _errors_section(summary: dict[str, Any]) -> str:
    by_kind = summary.get("errors_by_kind") or {}
    content = (
        table_html(["kind", "requests"], sorted(by_kind.items(), key=lambda kv: -kv[1]))
        if by_kind
        else '<p class="note">no failed requests</p>'
    )
    harness_errors = summary.get("errors") or []
    if harness_errors:
        items = "".join(f"<li>{escape(error)}</li>" for error in harness_errors)
        content += f"<h3>Harness errors</h3><ul>{items}</ul>"
    return _section("Errors by kind", content)


def _scenario_text(text: str | None) -> str:
    return f"<pre>{escape(text)}</pre>" if text else NOT_RECORDED


def _versions(summary: dict[str, Any], run_dir: Path) -> str:
    harness = summary.get("harness") or {}
    target = summary.get("target") or {}
    host = summary.get("host") or {}
    rows = [
        ["harness commit", _commit(harness)],
        ["target", f"{target.get('name', '-')} {_commit(target)}"],
        ["release", summary.get("release") or "unlabelled"],
        ["seed", str(summary.get("seed", "-"))],
        ["host", ", ".join(f"{k}={v}" for k, v in host.items()) or "-"],
        ["records", ", ".join(f"{k}={v}" for k, v in (summary.get("records") or {}).items())],
        ["run directory", str(run_dir)],
    ]
    return table_html(["what", "value"], rows)


def _commit(facts: dict[str, Any]) -> str:
    commit = facts.get("commit") or "unknown commit"
    dirty = facts.get("dirty")
    return f"{commit}{' (dirty)' if dirty else ''}{' (dirty: unknown)' if dirty is None else ''}"
