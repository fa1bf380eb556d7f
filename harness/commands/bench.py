"""`hftchaos bench`: every benchmark in one go, one JSON under results/bench/, a table; or
`--compare BASELINE CANDIDATE` to flag regressions. The benchmarks live in `benchmarks/`."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmarks.suite import add_arguments

    add_arguments(parser)


def run(arguments: argparse.Namespace) -> int:
    from benchmarks.suite import run_from_arguments

    return run_from_arguments(arguments)
