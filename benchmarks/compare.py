"""Compares a new bench document with a previous one and flags regressions.

    python -m benchmarks.compare BASELINE.json CANDIDATE.json [--tolerance 0.15]
    hftchaos bench-compare BASELINE.json CANDIDATE.json

A figure regressed when it moved the wrong way (per its `better`) by more than the tolerance,
relative to the baseline. The default tolerance is wide because this machine is shared:
absolute figures move by several percent run to run; same-run ratios move less. Figures
without a direction, or missing on either side, are listed but never called regressions.
Exit 0 without regressions, 1 with one, 2 for an unreadable document.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.figures import BenchDocument, Figure, load_document
from harness.errors import EXIT_BAD_INPUT, InputError

DEFAULT_TOLERANCE = 0.15
Verdict = Literal["regressed", "improved", "same", "new", "gone", "not compared"]


@dataclass(frozen=True, slots=True)
class Change:
    benchmark: str
    name: str
    unit: str
    baseline: float | None
    candidate: float | None
    verdict: Verdict

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.candidate is None or self.baseline == 0:
            return None
        return self.candidate / self.baseline


def judge_change(baseline: Figure | None, candidate: Figure | None, tolerance: float) -> Verdict:
    if candidate is None:
        return "gone"
    if baseline is None:
        return "new"
    if candidate.better is None or baseline.value is None or candidate.value is None:
        return "not compared"
    if baseline.value == 0:
        return "same" if candidate.value == 0 else "not compared"
    change = (candidate.value - baseline.value) / abs(baseline.value)
    worse = change if candidate.better == "lower" else -change
    if worse > tolerance:
        return "regressed"
    if worse < -tolerance:
        return "improved"
    return "same"


def compare_documents(
    baseline: BenchDocument, candidate: BenchDocument, tolerance: float = DEFAULT_TOLERANCE
) -> list[Change]:
    keys: list[tuple[str, str]] = []
    for document in (candidate, baseline):
        for benchmark, entry in document.benchmarks.items():
            for figure in entry.figures:
                if (benchmark, figure.name) not in keys:
                    keys.append((benchmark, figure.name))
    changes = []
    for benchmark, name in keys:
        old, new = baseline.figure(benchmark, name), candidate.figure(benchmark, name)
        known = new or old
        unit = known.unit if known is not None else ""
        changes.append(
            Change(
                benchmark,
                name,
                unit,
                None if old is None else old.value,
                None if new is None else new.value,
                judge_change(old, new, tolerance),
            )
        )
    return changes


def format_changes(changes: Sequence[Change]) -> list[str]:
    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    lines = []
    for change in changes:
        ratio = "" if change.ratio is None else f" (x{change.ratio:.2f})"
        lines.append(
            f"{change.verdict:12} {change.benchmark}.{change.name}: "
            f"{shown(change.baseline)} -> {shown(change.candidate)} {change.unit}{ratio}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    options = parser.parse_args(argv)
    try:
        baseline, candidate = load_document(options.baseline), load_document(options.candidate)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    changes = compare_documents(baseline, candidate, options.tolerance)
    print("\n".join(format_changes(changes)))
    regressed = [change for change in changes if change.verdict == "regressed"]
    print(
        f"{len(regressed)} regression(s) beyond {options.tolerance:.0%} of {len(changes)} figures"
    )
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main())
