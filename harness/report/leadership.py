"""report.html's leadership part: every leadership loss of every cluster, and the leader
probe's own precision (its status round trips and the warnings they caused)."""

from __future__ import annotations

from harness.report.html import escape, table_html
from harness.store.summary import RunSummary


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def leadership_html(summary: RunSummary) -> str:
    """The losses table, then the probe's precision; a note where there is neither."""
    parts = []
    losses = summary.leadership_losses
    if losses:
        rows = [
            [
                loss.cluster,
                f"{loss.old_leader} (term {loss.old_term})",
                loss.sign,
                f"{loss.new_leader} (term {loss.new_term})" if loss.new_leader else "none yet",
                "yes" if loss.same_node else "no",
                _figure(loss.leaderless_ms),
                _figure(loss.error_bound_ms),
            ]
            for loss in losses
        ]
        headers = ["cluster", "leader", "lost by", "new leader", "same node"]
        headers += ["leaderless ms", "± ms"]
        classes = ["fail" if loss.new_leader is None else "" for loss in losses]
        parts.append(table_html(headers, rows, classes))
    else:
        parts.append('<p class="note">no leader lost its leadership</p>')
    if summary.status_timing:
        rows = [
            [
                t.cluster,
                str(t.samples),
                _figure(t.round_trip_p50_ms),
                _figure(t.round_trip_p99_ms),
                _figure(t.implied_error_ms),
            ]
            for t in summary.status_timing
        ]
        headers = ["cluster", "answers", "round trip p50 ms", "p99 ms", "failover error ms"]
        parts.append(table_html(headers, rows))
    for warning in summary.measurement_warnings:
        parts.append(f'<p class="note fail">{escape(warning)}</p>')
    return "\n".join(parts)
