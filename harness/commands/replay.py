"""`hftchaos replay RUN_DIR`: ask the run's target to rebuild its state from what the run left
on disk (the reference system: each engine's journal) and compare with what the run recorded.

The target is `--target`, else the one the run's summary names, else the reference system's
(runs recorded before summaries named their target were all of it). A target without the
replay ability (harness/checks/target.py, `Replayable`) says so in one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.checks import Replayable, ReplayCell, ReplayReport, Target, load_target
from harness.commands.report import resolve_run_dir
from harness.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, SummaryError
from harness.paths import REFERENCE_TARGET
from harness.store.summary import load_summary

_MARKS = {True: "[green]match[/]", False: "[bold red]DIFFERS[/]", None: "[yellow]-[/]"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, as for `report`")
    parser.add_argument(
        "--target",
        metavar="MODULE:NAME",
        help="the target that replays it (default: the one the run's summary names)",
    )


def run(arguments: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    run_dir = resolve_run_dir(arguments.run_dir)
    if not run_dir.is_dir():
        errors.print(f"[bold red]error:[/] {escape(str(run_dir))}: not a run directory")
        return EXIT_BAD_INPUT
    target = _target(arguments.target, run_dir, console)
    if not isinstance(target, Replayable):
        errors.print(
            f"[bold red]error:[/] target {escape(target.name)} has no replay: nothing to compare"
        )
        return EXIT_BAD_INPUT
    report = target.replay(run_dir)
    console.print(_table(report, f"replay of {run_dir}"))
    for note in report.notes:
        console.print(f"[yellow]{escape(note)}[/]")
    if not report.rows:
        return EXIT_BAD_INPUT
    return EXIT_OK if report.matched else EXIT_FAILED


def _target(given: str | None, run_dir: Path, console: Console) -> Target[Any]:
    if given:
        return load_target(given)  # a bad path: TargetError, exit 2
    try:
        recorded = load_summary(run_dir).target.object_path
    except SummaryError:
        recorded = None
    if recorded is None:
        console.print(f"[dim]no target recorded for this run: replaying as {REFERENCE_TARGET}[/]")
    return load_target(recorded or REFERENCE_TARGET)


def _table(report: ReplayReport, title: str) -> Table:
    table = Table(title=escape(title))
    for column in report.columns:
        table.add_column(column)
    for row in report.rows:
        table.add_row(*(_cell(cell) for cell in row))
    return table


def _cell(cell: ReplayCell) -> str:
    return escape(cell) if isinstance(cell, str) else _MARKS[cell]
