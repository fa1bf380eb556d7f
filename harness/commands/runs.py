"""`hftchaos runs`: list and filter the runs of the results catalog, newest first."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.catalog import RunEntry, open_catalog
from harness.consoles import make_console
from harness.errors import EXIT_OK

VERDICT_STYLE = {"valid": "green", "unknown": "yellow", "invalid": "bold red"}
VERDICTS = tuple(VERDICT_STYLE)
# Below this terminal width the run directory column would squeeze the figures out of sight.
WIDTH_FOR_PATHS = 140
# Output going to a file or a pipe is not cut to rich's default of 80 columns.
PIPED_WIDTH = 160


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", help="only runs of this scenario")
    parser.add_argument("--release", help="only runs labelled with this release")
    parser.add_argument("--verdict", choices=VERDICTS, help="only runs with this verdict")
    parser.add_argument("--limit", type=_positive, default=50, help="at most N runs (default 50)")
    parser.add_argument("--rebuild", action="store_true", help="re-index every run directory first")


def run(arguments: argparse.Namespace) -> int:
    console = wide_console()
    catalog = open_catalog()
    if arguments.rebuild:
        count = catalog.rebuild()
        console.print(escape(f"indexed {count} runs under {catalog.results_root}"))
        for problem in catalog.unreadable:
            console.print(f"[yellow]left out:[/] {escape(problem)}", soft_wrap=True)
    entries = catalog.runs(
        scenario=arguments.scenario,
        release=arguments.release,
        verdict=arguments.verdict,
        limit=arguments.limit,
    )
    if not entries:
        console.print(
            escape(f"no runs match in {catalog.file} (`hftchaos runs --rebuild` re-indexes)")
        )
        return EXIT_OK
    with_paths = console.width >= WIDTH_FOR_PATHS
    console.print(runs_table(entries, catalog.results_root, with_paths))
    if not with_paths:
        console.print(f"[dim]run directories are shown from {WIDTH_FOR_PATHS} columns on[/]")
    return EXIT_OK


def runs_table(entries: list[RunEntry], results_root: Path, with_paths: bool = True) -> Table:
    title = escape(f"{len(entries)} runs under {results_root}, newest first")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("started (UTC)", "scenario", "release", "verdict"):
        table.add_column(column, no_wrap=True)
    for column in ("failover ms", "recovery ms", "downtime ms", "error rate"):
        table.add_column(column.replace(" ", "\n"), justify="right", no_wrap=True)
    if with_paths:
        table.add_column("run directory", overflow="fold")
    for entry in entries:
        style = VERDICT_STYLE.get(entry.verdict, "yellow")
        verdict = (
            entry.verdict if entry.status == "finished" else f"{entry.verdict} ({entry.status})"
        )
        path = [escape(_shown_path(entry.path, results_root))] if with_paths else []
        table.add_row(
            entry.started_at.replace("T", " ").removesuffix("Z")[:16],
            escape(entry.scenario),
            escape(entry.release or "-"),
            f"[{style}]{verdict}[/]",
            _milliseconds(entry.metrics.get("failover_ms")),
            _milliseconds(entry.metrics.get("recovery_ms")),
            _milliseconds(entry.metrics.get("downtime_ms")),
            _rate(entry.metrics.get("error_rate")),
            *path,
        )
    return table


def wide_console() -> Console:
    console = make_console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _shown_path(path: Path, results_root: Path) -> str:
    """Relative to the results root (named in the title): the scenario and the start stamp."""
    try:
        return str(path.relative_to(results_root))
    except ValueError:
        return str(path)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
