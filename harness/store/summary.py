"""The run summary: `summary.json` of a run directory, as one typed, versioned document.

The pipeline builds it once from the judged run (`harness/store/summarise.py`) and writes it
once, atomically; every reader (catalog, suite, compare, report, dashboard) goes through
`load_summary`, so the shape is declared here and nowhere else. Instants are
`time.monotonic_ns()` of the harness host, the one clock of the run's history; durations are
milliseconds from the instant named in each field's description.

Versions: 2 is this model. A summary without `schema_version` is version 1, the hand-built
dictionary of earlier harnesses; `harness/store/summary_v1.py` reads it into this model, with
what version 1 did not record left empty. `hftchaos schema` publishes the JSON Schema
(`results/summary.schema.json`).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from harness.errors import SummaryError
from harness.store.atomic import write_text_atomically
from harness.verdicts import Verdict

SUMMARY_FILE = "summary.json"
SCHEMA_VERSION: Final = 2
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "results" / "summary.schema.json"


class _Document(BaseModel):
    # Strict: the builder must hand over exactly these types (an int for an int, an enum for
    # an enum); unknown fields are an error, so a typo in a writer or reader cannot pass.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RunStatus(enum.Enum):
    FINISHED = "finished"  # ran to the end and was judged
    ABORTED = "aborted"  # an abort condition tripped, or the harness failed, before judging
    INTERRUPTED = "interrupted"  # stopped from outside (Ctrl-C, SIGTERM) before judging


class GitFacts(_Document):
    commit: str | None = None
    dirty: bool | None = None  # None: git could not tell


class TargetFacts(GitFacts):
    name: str | None = None  # the topology's name
    version: str | None = None  # a version the target reports, when it has one
    # What judged its safety checks and can replay the run: the topology's `target:`
    # (package.module:NAME, harness/checks/target.py); None: not recorded (older runs).
    object_path: str | None = None


class HostFacts(_Document):
    hostname: str | None = None
    platform: str | None = None
    python: str | None = None
    cpus: int | None = None


class BackendFacts(_Document):
    """Where the services ran, for a backend that can say (Docker: its engine and images)."""

    name: str
    engine_version: str | None = None
    images: dict[str, str] = Field(default_factory=dict)  # service -> image id


class RecordCounts(_Document):
    """Rows of each Parquet history file of the run."""

    requests: int = 0
    probes: int = 0
    faults: int = 0
    phases: int = 0
    metrics: int = 0
    warmup_requests: int = 0


class ScheduleStep(_Document):
    offset_s: float  # from the start of the load
    action: Literal["apply", "heal"]
    fault: int  # position in the scenario's fault list
    repeat: int


class LoadSpan(_Document):
    """The measured load on the run's clock: the origin of every chart and fault offset."""

    started_ns: int
    ended_ns: int | None = None  # None: the run stopped before the load was over


class MetricValues(_Document):
    """The run's figures, as SLOs are judged against them (see harness/metrics.py)."""

    failover_ms: float | None = None
    first_commit_ms: float | None = None
    recovery_ms: float | None = None
    recovery_from_heal_ms: float | None = None
    downtime_ms: float | None = None
    error_rate: float | None = None
    unknown_outcomes: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_p999_ms: float | None = None
    latency_max_ms: float | None = None
    kafka_lag_max: float | None = None
    leaderless_ms: float | None = None  # the longest leadership loss (harness/leadership.py)

    def by_name(self) -> dict[str, float | None]:
        """Metric name -> value, for the catalog and the suite, which look figures up by name."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class FaultSummary(_Document):
    """One application of a fault: what it hit, who led around it, when the system recovered."""

    fault: int
    repeat: int
    type: str
    targets: list[str]
    applied_ns: int
    healed_ns: int | None  # None: not healed within the recorded history
    late_ms: float | None  # behind schedule when it went in; None: not recorded
    leader_before: str | None
    term_before: int | None
    # The leader in the newest term the probe had seen by the heal (the end if never healed).
    leader_after: str | None
    term_after: int | None
    removes_leader: bool  # a leader-removing kind whose targets included the leader
    recovered_ns: int | None = None  # None: never recovered, or the run was not judged
    # applied_ns and healed_ns in UTC (the run's first clock anchor); None: an older run.
    applied_utc: str | None = None
    healed_utc: str | None = None
    recovery_ms: float | None = None  # from applied_ns
    recovery_from_heal_ms: float | None = None  # from healed_ns; None within a flapping episode
    # None: never judged (the run stopped before its heal) or recorded before effects were.
    effect: FaultEffectSummary | None = None


class FaultEffectSummary(_Document):
    """Whether the fault was seen to act (harness/faults/effects.py): anything but `effective`
    makes the run's verdict at best unknown."""

    status: Literal["effective", "not_effective", "unverified"]
    reason: str
    evidence: dict[str, JsonValue]  # what was observed: pids and states, counters, clocks


class FailoverSummary(_Document):
    """A leader election caused by a fault (see metrics.Failover)."""

    fault: int
    repeat: int
    old_leader: str
    new_leader: str | None  # None: no new leader was seen
    injected_ns: int | None
    elected_ns: int | None
    first_commit_ns: int | None
    failover_ms: float | None  # elected_ns - injected_ns
    first_commit_ms: float | None  # first_commit_ns - injected_ns
    # Which estimate placed the election (metrics.ElectionEstimate); None: no election seen.
    estimator: Literal["role_age", "mid_request", "bracket_middle"] | None
    cluster: str | None = None  # the Raft cluster whose leader the fault hit; None: older run
    # How far elected_ns can be from the election, from the probe's own bracket; None: no
    # election seen (or an older run).
    error_bound_ms: float | None = None


class LeadershipLossSummary(_Document):
    """One leadership loss, with or without a fault (harness/leadership.py)."""

    cluster: str
    old_leader: str
    old_term: int
    lost_ns: int
    sign: Literal["role", "unreachable", "newer-term", "fault"]
    new_leader: str | None  # None: no leader in a newer term by the end
    new_term: int | None
    elected_ns: int | None
    leaderless_ms: float | None
    same_node: bool  # the old leader won the newer term
    fault: int | None  # the fault aimed at the old leader, when one was
    error_bound_ms: float | None


class StatusTiming(_Document):
    """The leader probe's own status round trips, per cluster, and the failover error they
    imply (a round trip plus a fast poll: how wide the bracket around an election gets)."""

    cluster: str
    samples: int
    round_trip_p50_ms: float | None
    round_trip_p99_ms: float | None
    round_trip_max_ms: float | None
    implied_error_ms: float | None


class RecoverySpan(_Document):
    """From the first injection to the latest recovery: the "during" of latency_by_phase."""

    first_fault_ns: int
    recovered_ns: int | None  # None: no fault was recovered from
    span_ms: float | None  # recovered_ns - first_fault_ns


class LatencyFigures(_Document):
    count: int  # acknowledged requests
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    # Added within version 2 (the report's percentile table shows it): None in older files.
    p90_ms: float | None = None


class LatencyByPhase(_Document):
    """Acknowledged requests by intended send time: before the first fault, until recovery
    (RecoverySpan), after it."""

    before: LatencyFigures
    during: LatencyFigures
    after: LatencyFigures


class Bound(_Document):
    min: float | None = None
    max: float | None = None


class SloSummary(_Document):
    metric: str
    value: float | None  # None: not measured in this run
    bound: Bound
    bound_text: str  # for people: ">= 0 and <= 5"; readers judge by `bound`
    verdict: Verdict
    explanation: str


class CheckSummary(_Document):
    name: str
    verdict: Verdict
    counts: dict[str, int]
    violations: list[str]  # the first few, each concrete
    explanation: str


class RigSummary(_Document):
    """How busy the machine was (harness/rig.py); context for latency, never a verdict."""

    samples: int
    host_busy_pct_mean: float
    host_busy_pct_max: float | None
    host_steal_pct_mean: float | None
    host_steal_pct_max: float | None
    services_cpu_pct_mean: dict[str, float]
    saturated: bool


class SteadyWindow(_Document):
    window: str  # "before faults" | "after recovery"
    verdict: Verdict
    requests: int
    success_rate: float | None
    latency_p99_ms: float | None
    problems: list[str]
    rig: RigSummary | None


class HealingSummary(_Document):
    """Who healed the run's faults (from its journal, harness/faults/journal.py)."""

    by: str  # "the harness" at the end of its run
    faults: int  # fault applications journaled
    undone_from_journal: int  # healed from the journal's undo steps, not the fault's own heal
    errors: list[str]  # what could not be undone: the machine may not be as before


class ClockAnchorSummary(_Document):
    """A (monotonic, UTC) pair read together (harness/clock_anchor.py): utc = utc_ns +
    (instant - monotonic_ns). The run keeps one from its start and one from its end."""

    monotonic_ns: int
    utc_ns: int
    utc: str
    uncertainty_ns: int


class RunSummary(_Document):
    schema_version: Literal[2] = SCHEMA_VERSION
    scenario: str
    status: RunStatus
    verdict: Verdict
    release: str | None
    started_at: str  # ISO-8601 UTC wall time, for display and ordering
    duration_s: float | None
    seed: int | None
    harness: GitFacts
    target: TargetFacts
    host: HostFacts
    records: RecordCounts
    errors: list[str]  # harness errors: each makes the verdict at best unknown
    schedule: list[ScheduleStep]
    # Said before the run, e.g. a node whose connections do not come from its own address.
    warnings: list[str] = Field(default_factory=list)
    load: LoadSpan | None = None
    faults: list[FaultSummary] = Field(default_factory=list)
    backend: BackendFacts | None = None  # optional: absent for the local backend
    # The judgement: empty when the run was aborted before it was judged.
    metrics: MetricValues | None = None
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    failovers: list[FailoverSummary] = Field(default_factory=list)
    recovery: RecoverySpan | None = None
    latency_by_phase: LatencyByPhase | None = None
    slos: list[SloSummary] = Field(default_factory=list)
    checks: list[CheckSummary] = Field(default_factory=list)
    steady_state: list[SteadyWindow] = Field(default_factory=list)
    rig: RigSummary | None = None
    healing: HealingSummary | None = None  # None: written before runs kept a journal
    stopped_by: str | None = None  # the abort condition that tripped (status aborted)
    leadership_losses: list[LeadershipLossSummary] = Field(default_factory=list)
    status_timing: list[StatusTiming] = Field(default_factory=list)
    # Said before and during the run as well: e.g. a status endpoint too slow for the
    # precision the scenario asks (failover_precision_ms).
    measurement_warnings: list[str] = Field(default_factory=list)
    clock_anchors: list[ClockAnchorSummary] = Field(default_factory=list)

    def metric(self, name: str) -> float | None:
        return self.metrics.by_name().get(name) if self.metrics is not None else None

    @property
    def passed(self) -> bool:
        """Ran to its end, was judged, and held: what every reader may count as a pass."""
        return counts_as_pass(self.status.value, self.verdict.value)


def counts_as_pass(status: str, verdict: str) -> bool:
    """A run that ended early (interrupted, aborted) is never a pass, whatever its verdict."""
    return status == RunStatus.FINISHED.value and verdict == Verdict.VALID.value


def write_summary(run_dir: Path, summary: RunSummary) -> Path:
    path = run_dir / SUMMARY_FILE
    write_text_atomically(path, summary.model_dump_json(indent=2) + "\n")
    return path


def load_summary(run_dir: Path) -> RunSummary:
    """The summary of a run directory, of any version; SummaryError says what is wrong."""
    path = run_dir / SUMMARY_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SummaryError(f"{path}: missing; is {run_dir} a run directory?") from None
    except OSError as error:
        raise SummaryError(f"{path}: cannot be read ({error})") from error
    return parse_summary(text, path)


def parse_summary(text: str, path: Path) -> RunSummary:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise SummaryError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(document, dict):
        raise SummaryError(f"{path}: expected a JSON object")
    try:
        version = _Version.model_validate(document).schema_version
        if version == 1:
            from harness.store.summary_v1 import upgrade

            return upgrade(text, path.parent)
        if version == SCHEMA_VERSION:
            return RunSummary.model_validate_json(text)
    except ValidationError as error:
        raise SummaryError(f"{path}: not a valid run summary: {_first_problems(error)}") from error
    raise SummaryError(
        f"{path}: schema_version {version}; this hftchaos reads versions 1 to {SCHEMA_VERSION} "
        "(written by a newer hftchaos?)"
    )


class _Version(BaseModel):
    """Only which version a summary is, to pick the model that reads the rest."""

    model_config = ConfigDict(extra="ignore", strict=True)
    schema_version: int = 1  # version 1 did not say


def _first_problems(error: ValidationError, count: int = 3) -> str:
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or '(top)'}: {problem['msg']}"
        for problem in error.errors()[:count]
    ]
    more = error.error_count() - count
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def summary_schema() -> dict[str, object]:
    schema = RunSummary.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hftchaos run summary (summary.json)"
    return schema


def write_summary_schema(path: Path) -> None:
    write_text_atomically(path, json.dumps(summary_schema(), indent=2, sort_keys=True) + "\n")
