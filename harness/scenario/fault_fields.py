"""The fields every fault kind's scenario model shares: when it starts and ends, how it
repeats, and how it names its targets (services, roles, clusters and links). Pure: the fault
kinds (harness/faults/kinds/) build their models on these, and the scenario model collects them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.validation import StrictModel

Seconds = Annotated[float, Field(ge=0, le=3600)]
PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]
# An hour in milliseconds: no run's load is longer (load.duration_s <= 3600).
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# Names of services, roles and links: the topology's own rules, plus the length of any name.
Name = Annotated[str, Field(min_length=1, max_length=63)]


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
    type: str  # each kind narrows it to its own name: the discriminator of the union
    at_s: Seconds = Field(description="start offset from the beginning of the load")
    duration_s: PositiveSeconds | None = Field(
        default=None, description="healed after this long; None = healed at the end of the run"
    )
    repeat: Repeat | None = None
    label: str | None = Field(default=None, max_length=200)

    def active_duration_s(self) -> float | None:
        """How long one application lasts before it is healed (None: until the run ends)."""
        return self.duration_s

    def named_targets(self) -> list[tuple[tuple[str | int, ...], Target]]:
        """Each service target this fault names, with its field path (for validation errors);
        a kind with targets elsewhere than a `target` field says so by overriding this."""
        target = getattr(self, "target", None)
        return [] if target is None else [(("target",), target)]

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


class LinkFaultBase(FaultBase):
    link: LinkTarget
    stream: Literal["downstream", "upstream", "both"] = "downstream"
