"""`hftchaos report RUN_DIR`: write report.html for a stored run and print its path."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.consoles import make_console
from harness.errors import EXIT_OK
from harness.paths import results_root


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory: results/latest, results/<scenario>/<stamp>, or either of them "
        "relative to the results root (e.g. leader-kill/latest)",
    )


def run(arguments: argparse.Namespace) -> int:
    # Imported here: the parser imports every command module, and matplotlib is slow to load.
    from harness.report.run_report import write_run_report

    path = write_run_report(resolve_run_dir(arguments.run_dir))  # bad RUN_DIR: exit 2
    make_console().print(str(path), markup=False, soft_wrap=True)
    return EXIT_OK


def resolve_run_dir(argument: str) -> Path:
    """As given, else relative to the results root ($HFTCHAOS_RESULTS)."""
    given = Path(argument)
    under_root = results_root() / argument
    return under_root if not given.exists() and under_root.exists() else given
