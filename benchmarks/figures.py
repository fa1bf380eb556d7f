"""The bench document: every figure of one `hftchaos bench` run, with the conditions it was
measured under, in `results/bench/<UTC stamp>.json`.

A figure says which way is better (`lower`, `higher`, or `None` for a condition-like figure
that is reported but never called a regression), so `benchmarks.compare` can judge a change
without knowing what the figure means. Ratios measured in the same run (ours over Vegeta's,
preloaded over plain) are figures too: on a shared, noisy machine they compare like with like.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import InputError
from harness.store.atomic import write_text_atomically

SCHEMA = "hftchaos-bench/1"
Better = Literal["lower", "higher"]


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: float | None  # None: could not be measured this time (the entry's notes say why)
    unit: str
    better: Better | None = None
    conditions: dict[str, Any] = Field(default_factory=dict)  # rate, duration, variant...
    goal: str = ""  # the target for it, for the table ("<= 1 ms")


class BenchEntry(BaseModel):
    """One benchmark's part of a run."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "failed", "skipped"]
    seconds: float
    figures: list[Figure] = Field(default_factory=list)
    conditions: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)  # raw rows behind the figures
    notes: list[str] = Field(default_factory=list)  # why failed or skipped; what limited it


class BenchDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = Field(SCHEMA, alias="schema")
    stamp: str  # UTC, e.g. 20261201T122300Z
    quick: bool
    seconds: float
    conditions: dict[str, Any]  # cores, versions, commit, load on the machine
    benchmarks: dict[str, BenchEntry]

    def figure(self, benchmark: str, name: str) -> Figure | None:
        entry = self.benchmarks.get(benchmark)
        if entry is None:
            return None
        return next((figure for figure in entry.figures if figure.name == name), None)


@dataclass
class Measurement:
    """What a benchmark module's `measure(quick)` returns; the suite adds status and time."""

    figures: list[Figure]
    conditions: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def variants_and_ratio(
    name: str,
    values: dict[str, float],
    unit: str,
    conditions: dict[str, Any],
    candidate: str,
    baseline: str,
) -> list[Figure]:
    """`<name>_<variant>` for each variant (lower is better), and `<name>_<candidate>_over_
    <baseline>`: the same-run ratio, which moves less than either figure on a shared machine."""
    figures = [
        Figure(
            name=f"{name}_{variant}", value=value, unit=unit, better="lower", conditions=conditions
        )
        for variant, value in values.items()
    ]
    over = round(values[candidate] / values[baseline], 3) if values[baseline] else None
    figures.append(
        Figure(
            name=f"{name}_{candidate}_over_{baseline}",
            value=over,
            unit="x",
            better="lower",
            conditions=conditions,
        )
    )
    return figures


def write_document(document: BenchDocument, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{document.stamp}.json"
    text = json.dumps(document.model_dump(mode="json", by_alias=True), indent=2) + "\n"
    write_text_atomically(path, text)
    return path


def load_document(path: Path) -> BenchDocument:
    """A bench JSON, or InputError naming the file and the field that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise InputError(f"{path}: not JSON: {error}") from None
    try:
        return BenchDocument.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise InputError(f"{path}: {field}: {first['msg']}") from None
