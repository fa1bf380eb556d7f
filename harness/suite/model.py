"""A suite: which scenarios to run how often, under which release label, and the
availability model its results are projected with. Parsed once from YAML into these models;
the format is documented in scenarios/README.md ("Suites")."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from harness.excerpt import excerpt
from harness.validation import StrictModel

FAULT_CLASS_PATTERN = r"^[a-z][a-z0-9_]*$"
FaultClass = Annotated[str, Field(pattern=FAULT_CLASS_PATTERN, max_length=63)]
IncidentsPerYear = Annotated[float, Field(ge=0, le=1_000_000)]
YEAR_S = 365 * 24 * 3600
SCENARIO_SUFFIXES = (".yaml", ".yml")


class SuiteEntry(StrictModel):
    """One scenario of the suite; each repeat is a fresh run with its own run directory."""

    file: str = Field(
        min_length=1, max_length=4096, description="scenario file, relative to the suite file"
    )
    repeat: int = Field(default=1, ge=1, le=100)
    fault_class: str | None = Field(
        default=None,
        pattern=FAULT_CLASS_PATTERN,
        max_length=63,
        description="the class its incidents count under; derived from its faults when absent",
    )

    @field_validator("file")
    @classmethod
    def _a_yaml_file(cls, value: str) -> str:
        # Only a file meant as a scenario is read: a suite cannot make us quote any file.
        if not value.endswith(SCENARIO_SUFFIXES):
            raise ValueError(f"must be the path of a .yaml or .yml scenario, not {excerpt(value)}")
        return value


class AvailabilityModel(StrictModel):
    """What a year looks like: how many incidents of each fault class, and the budget.

    Each incident is assumed to cost the downtime measured for its class in this suite, so
    projected annual downtime = sum over classes of incidents_per_year x measured downtime.
    """

    annual_downtime_budget_s: float = Field(
        gt=0, le=YEAR_S, description="e.g. 9000 for 2.5 h a year"
    )
    baseline_annual_downtime_s: float | None = Field(
        default=None,
        gt=0,
        le=YEAR_S,
        description="the 'before' to compare with, e.g. 144000 for 40 h",
    )
    incidents_per_year: dict[FaultClass, IncidentsPerYear] = Field(
        default_factory=dict, max_length=100, description="fault class -> expected incidents a year"
    )


class Suite(StrictModel):
    # The name is a folder of the results (suites/<name>/): at most 63 characters.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)
    description: str = Field(default="", max_length=10_000)
    release: str | None = Field(
        default=None, min_length=1, max_length=100, description="label of its runs; --release wins"
    )
    scenarios: list[SuiteEntry] = Field(min_length=1, max_length=1000)
    share_topology: bool = Field(
        default=False,
        description="keep one topology up across runs that can use it (faster; runs are then "
        "not independent: each starts from the state the previous one left)",
    )
    availability: AvailabilityModel
