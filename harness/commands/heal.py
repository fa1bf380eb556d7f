"""`hftchaos heal`: undo what runs whose harness died left on the machine (kernel rules,
toxics and disabled proxies, clock offsets, stopped or orphan processes), from their
journals. Exit 0 when there was nothing to heal or everything was healed; 3 naming what
could not be."""

from __future__ import annotations

import argparse

from harness.consoles import make_console
from harness.errors import EXIT_ENVIRONMENT, EXIT_OK

console = make_console()
error_console = make_console(stderr=True)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--list", action="store_true", help="only list the unfinished runs, heal nothing"
    )


def run(arguments: argparse.Namespace) -> int:
    from harness.faults.journal_heal import describe_heal
    from harness.faults.stale import entries, heal_unfinished, unfinished

    if arguments.list:
        for entry in unfinished(entries()):
            where = entry.journal.path if entry.journal else "(no journal)"
            console.print(f"unfinished run {entry.run_id}: {where}", markup=False)
        return EXIT_OK
    outcomes = heal_unfinished("hftchaos heal")
    for outcome in outcomes:
        target = console if outcome.healed else error_console
        target.print(describe_heal(outcome), markup=False, soft_wrap=True)
    if not outcomes:
        console.print("nothing to heal: no run was left unfinished")
    return EXIT_OK if all(outcome.healed for outcome in outcomes) else EXIT_ENVIRONMENT
