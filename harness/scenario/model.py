"""A failure scenario: the whole truth of a run, parsed once from YAML into typed models.

name, topology, load profile, steady state, a timeline of faults, SLOs with a downtime budget,
and the safety checks that apply. Documented with an example in scenarios/README.md, with the
range of every number ("Limits"): no value is NaN or infinite, none is unbounded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from harness.excerpt import excerpt
from harness.faults.registry import fault_models, fault_type_names
from harness.scenario.fault_fields import (
    HOUR_MS,
    FaultBase,
    PositiveSeconds,
    Seconds,
)
from harness.scenario.http_load import HttpProfile, LoadTarget, ReadBack, UserClassSpec
from harness.scenario.limit import Bound, Limit
from harness.validation import StrictModel

TOPOLOGY_SUFFIXES = (".yaml", ".yml")

# A fault in the timeline: one of the kinds in harness/faults/kinds/, told apart by `type`.
# The union is built from the registry, so adding a kind touches that kind's module only;
# mypy sees the common base.
if TYPE_CHECKING:
    Fault = FaultBase
else:
    Fault = Annotated[Union[fault_models()], Field(discriminator="type")]  # noqa: UP007
FAULT_TYPES = tuple(fault_type_names())


class LoadProfile(StrictModel):
    """Open-loop load: requests are due at a fixed rate whether or not replies came back. The
    reference order flow to the first gateway by default; `http` (declarative requests) or
    `user_class` (a Locust class of the user's own) for any other system, sent to `target`."""

    rate_per_s: float = Field(gt=0, le=100_000)
    duration_s: PositiveSeconds
    users: int = Field(default=16, ge=1, le=2048, description="concurrent senders")
    # The reference gateway refuses symbols over 64 characters.
    symbols: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=lambda: ["ACME", "GLOBEX"], min_length=1, max_length=1000
    )
    accounts: int = Field(default=4, ge=2, le=1000)
    mid_price: float = Field(default=100.0, gt=0, le=1e9)
    cancel_ratio: float = Field(default=0.1, ge=0, le=1)
    request_timeout_s: float = Field(default=5.0, gt=0, le=60)
    warmup_s: float = Field(
        default=3.0,
        ge=0,
        le=120,
        description="order flow at the same rate before the measured load, on a topology that "
        "just came up (JITs, connections, Kafka producers); not measured, but judged for safety",
    )
    target: LoadTarget | None = Field(
        default=None, description="where the load goes (default: the first role: gateway)"
    )
    http: HttpProfile | None = None
    user_class: UserClassSpec | None = None

    @model_validator(mode="after")
    def _one_traffic(self) -> LoadProfile:
        if self.http is not None and self.user_class is not None:
            raise ValueError("give 'http' or 'user_class', not both")
        return self


class ProbeSpec(StrictModel):
    """A steady-state probe with its tolerance."""

    probe: Literal["kafka_consumer_lag", "http"]
    url: str | None = Field(
        default=None, max_length=2048, description="for http: may use topology placeholders"
    )
    max: Bound | None = None
    expect_status: int = Field(default=200, ge=100, le=599)


class SteadyState(StrictModel):
    """What healthy looks like; checked before the faults and after recovery."""

    window_s: PositiveSeconds = Field(default=2.0, description="window the rates are taken over")
    success_rate_min: float = Field(default=0.99, ge=0, le=1)
    latency_p99_ms_max: float = Field(default=100.0, gt=0, le=HOUR_MS)
    probes: list[ProbeSpec] = Field(default_factory=list, max_length=100)


class ErrorRateAbort(StrictModel):
    above: float = Field(gt=0, lt=1, description="share of answered requests that failed")
    for_s: PositiveSeconds = Field(description="how long the share must stay above the limit")
    window_s: PositiveSeconds = Field(default=1.0, description="the share is taken over this")


class ProbeAbort(StrictModel):
    probe: Literal["leader", "http", "kafka_consumer_lag"] = Field(
        default="leader",
        description="'leader': no member claims leadership; others: a side probe has no answer",
    )
    for_s: PositiveSeconds = Field(description="how long the probe must keep failing")


class AbortConditions(StrictModel):
    """Stop conditions (like AWS FIS's): when one trips, the run stops, heals, and is
    reported as aborted (exit 1)."""

    error_rate: ErrorRateAbort | None = None
    probe_failing: ProbeAbort | None = None
    max_duration_s: PositiveSeconds | None = Field(
        default=None, description="from the start of the load to the end of the run"
    )


METRICS = (
    "failover_ms",
    "first_commit_ms",
    "recovery_ms",
    "recovery_from_heal_ms",
    "downtime_ms",
    "error_rate",
    "unknown_outcomes",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_p999_ms",
    "latency_max_ms",
    "kafka_lag_max",
    "leaderless_ms",
)
CHECKS = (
    "no_lost_acks",
    "no_double_fills",
    "replicas_identical",
    "kafka_gap_free",
    "deterministic_replay",
    "monotonic_timestamps",
)


class Scenario(StrictModel):
    # The name is a folder of the results: at most 63 characters, like a topology's.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)
    description: str = Field(default="", max_length=10_000)
    topology: str = Field(
        default="reference",
        min_length=1,
        max_length=4096,
        description="'reference' or a path to a .yaml or .yml file, relative to the scenario",
    )
    load: LoadProfile
    steady_state: SteadyState = Field(default_factory=SteadyState)
    faults: list[Fault] = Field(default_factory=list, max_length=1000)
    settle_s: Seconds = Field(default=2.0, description="load keeps running after the last heal")
    slo: dict[str, Limit] = Field(default_factory=dict)
    downtime_budget_ms: float | None = Field(default=None, gt=0, le=HOUR_MS)
    checks: list[str] = Field(default_factory=lambda: list(CHECKS), max_length=100)
    abort: AbortConditions = Field(default_factory=AbortConditions)
    read_back: ReadBack | None = Field(
        default=None, description="after healing, every acknowledged write is read back"
    )
    failover_precision_ms: float = Field(
        default=10.0,
        gt=0,
        le=HOUR_MS,
        description="warn when the status round trip makes failover_ms less certain than this",
    )

    @field_validator("topology")
    @classmethod
    def _topology_is_a_yaml_file(cls, value: str) -> str:
        # Only a file meant as a topology is read: `topology: secret.env` is refused unread.
        if value != "reference" and not value.endswith(TOPOLOGY_SUFFIXES):
            raise ValueError(
                "must be 'reference' or the path of a .yaml or .yml topology file, "
                f"not {excerpt(value)}"
            )
        return value
