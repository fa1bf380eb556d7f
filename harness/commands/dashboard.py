"""`hftchaos dashboard [--output DIR]`: build the static dashboard site from the results catalog."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from harness.consoles import make_console
from harness.errors import EXIT_OK

console = make_console()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        metavar="DIR",
        default=None,
        help="where to write the site (default: <results root>/dashboard)",
    )
    parser.add_argument(
        "--reindex",
        action="store_true",
        help="rebuild the catalog from the run directories first",
    )


def run(arguments: argparse.Namespace) -> int:
    from harness.catalog import open_catalog
    from harness.dashboard import build_dashboard

    catalog = open_catalog()
    # An empty catalog next to existing runs means they were made before the catalog existed.
    if arguments.reindex or not catalog.runs(limit=1):
        indexed = catalog.rebuild()
        console.print(escape(f"indexed {indexed} run(s) into {catalog.file}"))
    output = Path(arguments.output) if arguments.output else None
    site = build_dashboard(
        catalog, output, progress=lambda message: console.print(escape(f"  {message}"))
    )
    for problem in site.problems:
        console.print(f"[yellow]note:[/] {escape(problem)}", soft_wrap=True)
    console.print(
        escape(
            f"dashboard: {len(site.pages)} page(s), {site.runs} run(s), "
            f"{site.suite_runs} suite run(s) -> {site.index}"
        )
    )
    return EXIT_OK
