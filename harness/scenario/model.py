"""A failure scenario: the whole truth of a run, parsed once from YAML into typed models.

name, topology, load profile, steady state, a timeline of faults, SLOs with a downtime budget,
and the safety checks that apply. Documented with an example in scenarios/README.md, with the
range of every number ("Limits"): no value is NaN or infinite, none is unbounded.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from harness.excerpt import excerpt
from harness.scenario.http_load import HttpProfile, LoadTarget, ReadBack, UserClassSpec
from harness.validation import StrictModel

Seconds = Annotated[float, Field(ge=0, le=3600)]
PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]
# An hour in milliseconds: no run's load is longer (load.duration_s <= 3600).
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# Names of services, roles and links: the topology's own rules, plus the length of any name.
Name = Annotated[str, Field(min_length=1, max_length=63)]
# An SLO bound: every metric is a non-negative count, rate or duration.
Bound = Annotated[float, Field(ge=0, le=1e12)]
TOPOLOGY_SUFFIXES = (".yaml", ".yml")


class RoleSelector(StrictModel):
    """Services chosen by role, or the members of one Raft cluster (`cluster`, the topology's
    raft.cluster), resolved at the moment of injection and recorded."""

    role: Name = "engine"
    cluster: Name | None = Field(default=None, description="the members of this Raft cluster")
    select: Literal[
        "leader", "follower", "random-follower", "minority", "majority", "all", "random"
    ] = "all"


# A service name, or services chosen by role.
Target = Name | RoleSelector


class LinkSelector(StrictModel):
    """Links chosen by their ends, e.g. from: gateway, to: {role: engine, select: leader}."""

    source: Name = Field(alias="from")
    target: Target = Field(alias="to")


LinkTarget = Name | LinkSelector


class Repeat(StrictModel):
    """Flapping: apply the fault `times` times, one start every `every_s` seconds."""

    times: int = Field(ge=1, le=1000)
    every_s: PositiveSeconds


class FaultBase(StrictModel):
    at_s: Seconds = Field(description="start offset from the beginning of the load")
    duration_s: PositiveSeconds | None = Field(
        default=None, description="healed after this long; None = healed at the end of the run"
    )
    repeat: Repeat | None = None
    label: str | None = Field(default=None, max_length=200)

    def active_duration_s(self) -> float | None:
        """How long one application lasts before it is healed (None: until the run ends)."""
        return self.duration_s

    @model_validator(mode="after")
    def _repeat_needs_a_duration_shorter_than_the_period(self) -> FaultBase:
        if self.repeat and self.repeat.times > 1:
            duration = self.active_duration_s()
            if duration is None:
                raise ValueError("a repeated fault needs duration_s (it must heal between repeats)")
            if duration >= self.repeat.every_s:
                raise ValueError(
                    f"its duration ({duration} s) must be shorter than repeat.every_s "
                    f"({self.repeat.every_s}) so each repeat heals before the next"
                )
        return self


class KillFault(FaultBase):
    type: Literal["kill"]
    target: Target
    restart_after_s: Seconds | None = Field(
        default=None, description="start the service again this long after the kill"
    )

    def active_duration_s(self) -> float | None:
        return self.restart_after_s if self.restart_after_s is not None else self.duration_s


class RestartFault(FaultBase):
    type: Literal["restart"]
    target: Target


class PauseFault(FaultBase):
    type: Literal["pause"]
    target: Target
    duration_s: PositiveSeconds  # a pause always ends: SIGCONT


class ClockSkewFault(FaultBase):
    type: Literal["clock_skew"]
    target: Target
    offset_ms: float = Field(
        ge=-DAY_MS, le=DAY_MS, description="wall clock step; negative moves it back (a day at most)"
    )

    @model_validator(mode="after")
    def _nonzero(self) -> ClockSkewFault:
        if self.offset_ms == 0:
            raise ValueError("offset_ms must not be 0")
        return self


class PacketLossFault(FaultBase):
    type: Literal["packet_loss"]
    target: Target
    percent: float = Field(gt=0, le=100)


class PartitionFault(FaultBase):
    type: Literal["partition"]
    isolate: Target | None = Field(default=None, description="cut these off from all peers")
    groups: list[Annotated[list[Target], Field(min_length=1, max_length=256)]] | None = Field(
        default=None,
        max_length=256,
        description="split into groups that can only talk within themselves",
    )

    @model_validator(mode="after")
    def _one_shape(self) -> PartitionFault:
        if (self.isolate is None) == (self.groups is None):
            raise ValueError("give exactly one of 'isolate' or 'groups'")
        if self.groups is not None and len(self.groups) < 2:
            raise ValueError("groups needs at least two groups")
        return self


class LinkFaultBase(FaultBase):
    link: LinkTarget
    stream: Literal["downstream", "upstream", "both"] = "downstream"


class LatencyFault(LinkFaultBase):
    type: Literal["latency"]
    latency_ms: int = Field(gt=0, le=60_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)


class BandwidthFault(LinkFaultBase):
    type: Literal["bandwidth"]
    # 10 GB/s: more than loopback carries, so any larger figure is a typo, not a limit.
    rate_kb_per_s: int = Field(gt=0, le=10_000_000)


class TimeoutFault(LinkFaultBase):
    type: Literal["timeout"]
    timeout_ms: int = Field(
        ge=0, le=HOUR_MS, description="0: data is held until the fault is healed"
    )


class ResetPeerFault(LinkFaultBase):
    type: Literal["reset_peer"]
    timeout_ms: int = Field(default=0, ge=0, le=HOUR_MS)


class SlicerFault(LinkFaultBase):
    type: Literal["slicer"]
    average_size: int = Field(gt=0, le=1 << 20, description="bytes")
    size_variation: int = Field(default=0, ge=0, le=1 << 20, description="bytes")
    delay_us: int = Field(default=0, ge=0, le=60_000_000, description="a minute at most")

    @model_validator(mode="after")
    def _variation_below_size(self) -> SlicerFault:
        # Toxiproxy draws each slice from average_size +- size_variation: it must stay above 0.
        if self.size_variation >= self.average_size:
            raise ValueError(
                f"size_variation ({self.size_variation}) must be smaller than average_size "
                f"({self.average_size})"
            )
        return self


class LinkDownFault(LinkFaultBase):
    type: Literal["link_down"]


Fault = Annotated[
    KillFault
    | RestartFault
    | PauseFault
    | ClockSkewFault
    | PacketLossFault
    | PartitionFault
    | LatencyFault
    | BandwidthFault
    | TimeoutFault
    | ResetPeerFault
    | SlicerFault
    | LinkDownFault,
    Field(discriminator="type"),
]
FAULT_TYPES = (
    "kill",
    "restart",
    "pause",
    "clock_skew",
    "packet_loss",
    "partition",
    "latency",
    "bandwidth",
    "timeout",
    "reset_peer",
    "slicer",
    "link_down",
)


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


class Limit(StrictModel):
    max: Bound | None = None
    min: Bound | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Limit:
        if self.max is None and self.min is None:
            raise ValueError("give 'max' or 'min'")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g}): no value passes")
        return self


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
