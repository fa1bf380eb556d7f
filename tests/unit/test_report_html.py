from __future__ import annotations

import base64

from matplotlib.figure import Figure

from harness.report.html import Raw, escape, figure_html, page, table_html, verdict_badge


def test_escape_handles_markup_and_none() -> None:
    assert escape('<b>"x" & y</b>') == "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
    assert escape(None) == ""
    assert escape(3.5) == "3.5"


def test_page_is_a_complete_document_without_external_resources() -> None:
    html = page("run <1>", "<p>body</p>", subtitle="a & b")
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>run &lt;1&gt;</title>" in html
    assert "a &amp; b" in html and "<p>body</p>" in html
    for external in ("http://", "https://", "<script", "<link"):
        assert external not in html


def test_table_escapes_cells_keeps_raw_html_and_marks_rows() -> None:
    html = table_html(
        ["metric", "value"],
        [["<x>", 1.5], ["ok", Raw("<b>fine</b>")], ["n", "12.5 ms"]],
        classes=["fail", "", ""],
    )
    assert "<td>&lt;x&gt;</td>" in html
    assert '<td class="num">1.5</td>' in html
    assert '<td class="num">12.5 ms</td>' in html
    assert "<td><b>fine</b></td>" in html
    assert '<tr class="fail">' in html and html.count("<tr") == 4  # header + 3 rows


def test_verdict_badge_falls_back_to_unknown_style() -> None:
    assert 'class="badge valid"' in verdict_badge("valid")
    assert 'class="badge invalid large"' in verdict_badge("invalid", large=True)
    assert 'class="badge unknown"' in verdict_badge("<weird>")
    assert "&lt;weird&gt;" in verdict_badge("<weird>")


def test_figure_html_embeds_a_png() -> None:
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    html = figure_html(fig, alt='a "line"', caption="cap")
    assert html.startswith("<figure><img ")
    assert 'class="figure"' in html and 'alt="a &quot;line&quot;"' in html
    assert "<figcaption>cap</figcaption>" in html
    encoded = html.split("base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(encoded).startswith(b"\x89PNG")
