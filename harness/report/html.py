"""Shared building blocks for every HTML page the harness writes (run, suite, comparison
reports, dashboards), so they look like one product.

Pages are self-contained: inline CSS, figures as data: URIs, no scripts or external resources,
so a report can be mailed, archived or opened from a CI artifact without a server.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

# One palette for every page; verdict colours match the console (green / amber / red).
_CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --panel: #f6f8fb;
        --valid: #1f8a4c; --invalid: #c62828; --unknown: #b7791f; --accent: #2b5fab;
        --not-applicable: #8a94a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
header.page { padding: 24px 40px 18px; border-bottom: 1px solid var(--line);
              background: var(--panel); }
header.page h1 { margin: 0 0 4px; font-size: 26px; }
header.page .subtitle { color: var(--muted); }
main { padding: 8px 40px 40px; max-width: 1400px; }
h2 { margin: 32px 0 10px; font-size: 20px; border-bottom: 2px solid var(--line);
     padding-bottom: 4px; }
h3 { margin: 20px 0 8px; font-size: 16px; }
p.note, .muted { color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td { background: #fdecec; }
.badge { display: inline-block; padding: 2px 12px; border-radius: 999px; color: #fff;
         font-weight: 700; font-size: 14px; letter-spacing: .04em; text-transform: uppercase; }
.badge.valid { background: var(--valid); }
.badge.invalid { background: var(--invalid); }
.badge.unknown { background: var(--unknown); }
.badge.not_applicable { background: var(--not-applicable); }
.badge.large { font-size: 18px; padding: 4px 18px; }
.stats { display: flex; flex-wrap: wrap; gap: 16px; margin: 18px 0 4px; }
.stat { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 10px 18px;
        min-width: 170px; }
.stat .value { font-size: 30px; font-weight: 700; font-variant-numeric: tabular-nums; }
.stat .unit { font-size: 15px; color: var(--muted); margin-left: 3px; }
.stat .label { color: var(--muted); font-size: 13px; }
figure { margin: 12px 0 20px; }
figure img.figure { max-width: 100%; height: auto; border: 1px solid var(--line);
                    border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px;
      overflow-x: auto; font-size: 13px; }
code { font-size: 13px; }
a { color: var(--accent); }
section.overview { margin-top: 18px; }
.banner { background: #fff4e5; border: 1px solid #f0c36d; border-radius: 6px; padding: 8px 14px; }
.meter { width: 420px; max-width: 100%; height: 14px; background: var(--line);
         border-radius: 7px; overflow: hidden; }
.meter > div { height: 100%; background: var(--valid); }
.meter.over > div { background: var(--invalid); }
"""

VERDICTS = ("valid", "invalid", "unknown", "not_applicable")
# Cells like "1,234.5", "12 ms" or "40%" are right-aligned like numbers.
_NUMERIC = re.compile(r"^-?[\d,]+(\.\d+)?( ?(ms|s|%))?$")


def escape(text: object) -> str:
    """HTML-escape anything printable (None becomes an empty string)."""
    return "" if text is None else html.escape(str(text), quote=True)


def page(title: str, body: str, subtitle: str = "") -> str:
    """A complete HTML5 document: `body` is trusted HTML, title and subtitle are escaped."""
    subtitle_html = f'<div class="subtitle">{escape(subtitle)}</div>' if subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header class="page"><h1>{escape(title)}</h1>{subtitle_html}</header>\n'
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def figure_html(fig: Any, alt: str, caption: str = "") -> str:
    """A matplotlib Figure as an inline PNG `<figure>`; the figure is closed afterwards."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    finally:
        if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: release it
            import matplotlib.pyplot as plt

            plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{escape(alt)}" '
        f'class="figure">{caption_html}</figure>'
    )


def table_html(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    classes: Sequence[str] | None = None,
) -> str:
    """A table with escaped cells. `classes` gives one CSS class per row (e.g. "fail"), or ""."""
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = []
    for index, row in enumerate(rows):
        row_class = classes[index] if classes is not None and index < len(classes) else ""
        class_attribute = f' class="{escape(row_class)}"' if row_class else ""
        cells = "".join(_cell(value) for value in row)
        body.append(f"<tr{class_attribute}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, Raw):
        return f"<td>{value.html}</td>"
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or (isinstance(value, str) and _NUMERIC.match(value)):
        return f'<td class="num">{escape(value)}</td>'
    return f"<td>{escape(value)}</td>"


class Raw:
    """A table cell that is already HTML (e.g. a verdict badge); everything else is escaped."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text


def verdict_badge(verdict: str, large: bool = False) -> str:
    """A coloured pill: valid (green), invalid (red), not_applicable (grey: a check the target
    does not provide), anything else as unknown (amber)."""
    kind = verdict if verdict in VERDICTS else "unknown"
    size = " large" if large else ""
    return f'<span class="badge {kind}{size}">{escape(verdict)}</span>'
