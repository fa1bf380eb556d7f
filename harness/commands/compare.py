"""`hftchaos compare`: did the candidate release recover worse than the baseline? A CI gate:
exit 1 on any regression, 0 otherwise, 2 when a release has no runs in the catalog."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.catalog import Catalog, open_catalog
from harness.commands.runs import wide_console
from harness.compare.model import Change, Comparison, Rule, compare_runs
from harness.compare.text import comparison_cells, rule_text
from harness.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

CHANGE_STYLE = {
    Change.REGRESSION: "bold red",
    Change.IMPROVEMENT: "green",
    Change.UNCHANGED: "green",
    Change.INCONCLUSIVE: "yellow",
    Change.TOO_FEW_RUNS: "yellow",
    Change.NOT_MEASURED: "yellow",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, metavar="LABEL", help="the reference release")
    parser.add_argument("--candidate", required=True, metavar="LABEL", help="the release judged")
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="S",
        help="compare only this scenario (repeatable; default: every scenario both ran)",
    )
    parser.add_argument(
        "--threshold",
        type=_non_negative,
        default=Rule.threshold,
        help="relative worsening of a median that counts (default 0.2 = 20%%)",
    )
    parser.add_argument(
        "--min-delta-ms",
        type=_non_negative,
        default=Rule.min_delta_ms,
        help="and the absolute worsening of a millisecond median that counts (default 25)",
    )
    parser.add_argument(
        "--html",
        type=Path,
        help="where to write the HTML comparison "
        "(default: <results>/compare/<baseline>-vs-<candidate>.html)",
    )


def run(arguments: argparse.Namespace) -> int:
    console = wide_console()
    catalog = open_catalog()
    labels = (arguments.baseline, arguments.candidate)
    runs = {label: catalog.runs(release=label) for label in labels}
    unknown = [label for label in labels if not runs[label]]
    if unknown:
        console.print(_no_runs_message(catalog, unknown), soft_wrap=True)
        return EXIT_BAD_INPUT
    rule = Rule(threshold=arguments.threshold, min_delta_ms=arguments.min_delta_ms)
    comparison = compare_runs(*labels, runs[labels[0]], runs[labels[1]], arguments.scenario, rule)
    if not comparison.metrics:
        for scenario, reason in comparison.skipped.items():
            console.print(f"[yellow]{escape(scenario)}[/]: {escape(reason)}")
        console.print(
            "[bold red]error:[/] "
            + escape(f"no scenario was run by both {labels[0]} and {labels[1]}")
        )
        return EXIT_BAD_INPUT
    print_comparison(console, comparison)
    html_path = arguments.html or default_html_path(catalog.results_root, *labels)
    from harness.compare.html import write_comparison_html

    write_comparison_html(comparison, html_path)
    console.print(escape(f"comparison written to {html_path}"))
    return EXIT_FAILED if comparison.regressions else EXIT_OK


def default_html_path(results_root: Path, baseline: str, candidate: str) -> Path:
    return results_root / "compare" / f"{_file_safe(baseline)}-vs-{_file_safe(candidate)}.html"


def print_comparison(console: Console, comparison: Comparison) -> None:
    console.print(comparison_table(comparison))
    for scenario, reason in comparison.skipped.items():
        console.print(f"[yellow]not compared[/] {escape(scenario)}: {escape(reason)}")
    rule = comparison.rule
    console.print(f"[dim]{rule_text(rule.threshold, rule.min_delta_ms)}[/]", soft_wrap=True)
    regressions = comparison.regressions
    if regressions:
        names = ", ".join(f"{m.scenario} {m.metric}" for m in regressions)
        console.print(f"[bold red]{len(regressions)} regression(s):[/] {escape(names)}")
    else:
        console.print(
            "[green]no regression[/] "
            + escape(f"of {comparison.candidate} against {comparison.baseline}")
        )


def comparison_table(comparison: Comparison) -> Table:
    # Release labels and scenario names come from files and the command line: never markup.
    baseline, candidate = escape(comparison.baseline), escape(comparison.candidate)
    table = Table(title=f"{candidate} (candidate) against {baseline} (baseline)")
    table.add_column("scenario", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    table.add_column(f"{baseline}\nmedian / p95 (n)", justify="right")
    table.add_column(f"{candidate}\nmedian / p95 (n)", justify="right")
    table.add_column("change", justify="right")
    table.add_column("95% interval\nof the difference", justify="right")
    table.add_column("p", justify="right")
    table.add_column("verdict")
    for row in comparison.metrics:
        *cells, verdict = comparison_cells(row)
        table.add_row(*map(escape, cells), f"[{CHANGE_STYLE[row.change]}]{verdict}[/]")
    return table


def _no_runs_message(catalog: Catalog, labels: list[str]) -> str:
    known = catalog.releases()
    listed = ", ".join(known) if known else "none (label runs with `hftchaos run --release LABEL`)"
    missing = " and ".join(repr(label) for label in labels)
    return "[bold red]error:[/] " + escape(
        f"no runs of release {missing} in {catalog.file}; "
        f"known releases: {listed}. Runs made before the catalog existed: `hftchaos runs --rebuild`"
    )


def _file_safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text}")
    return value
