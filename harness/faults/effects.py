"""Whether an injected fault did anything: "a fault that did nothing must never look like
resilience".

Every fault kind gives the timeline an `EffectWatch` for each application: it looks at the
system right after injection (`injected`) and once more just before the heal (`judge`), and
says what it saw as an `Effect` with its evidence (process states, kernel packet counters,
toxics and the bytes through them, the clock a process reads). Only what is observed on the
system counts, never what the harness asked for: a fault turned into a no-op must come out
NOT_EFFECTIVE. The judged effect travels in the heal's FaultEvent (`detail["effect"]`), so a
run can be judged again from its history; `effect_verdicts` turns each one into a part of the
run's verdict: anything but EFFECTIVE makes the run unknown, with the reason.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.faults.base import ActiveFault, FaultContext
from harness.records import FaultEvent
from harness.verdicts import Verdict

if TYPE_CHECKING:
    from harness.scenario.fault_fields import FaultBase

EFFECT_KEY = "effect"  # where the judged effect sits in the heal event's detail


class EffectStatus(enum.Enum):
    EFFECTIVE = "effective"  # the fault was seen acting on the system
    NOT_EFFECTIVE = "not_effective"  # seen not to act (no packet matched, process still runs)
    UNVERIFIED = "unverified"  # could not be looked at (no pid, no metrics, an error)


@dataclass(frozen=True)
class Effect:
    status: EffectStatus
    reason: str  # for people: what was seen, and for a failed check what to do about it
    evidence: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"status": self.status.value, "reason": self.reason, "evidence": self.evidence}

    @staticmethod
    def from_json(data: object) -> Effect | None:
        if not isinstance(data, dict):
            return None
        try:
            status = EffectStatus(data.get("status"))
        except ValueError:
            return None
        evidence = data.get("evidence")
        return Effect(
            status, str(data.get("reason", "")), evidence if isinstance(evidence, dict) else {}
        )


def effective(reason: str, **evidence: object) -> Effect:
    return Effect(EffectStatus.EFFECTIVE, reason, evidence)


def not_effective(reason: str, **evidence: object) -> Effect:
    return Effect(EffectStatus.NOT_EFFECTIVE, reason, evidence)


def unverified(reason: str, **evidence: object) -> Effect:
    return Effect(EffectStatus.UNVERIFIED, reason, evidence)


def boot_clock_s() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class EffectRequest:
    """One application of a fault, as its effect watch sees it."""

    fault: Any  # the kind's scenario model
    key: int  # the application's key (rule tags, toxic names)
    active: ActiveFault
    context: FaultContext
    # When it went in, on CLOCK_BOOTTIME: the clock of process start times in /proc.
    injected_boot_s: float = field(default_factory=lambda: boot_clock_s())


class EffectWatch(Protocol):
    def injected(self) -> None:
        """Observe right after injection, while the fault is in force."""

    def judge(self) -> Effect:
        """Observe once more just before the heal, and judge the whole application."""


class Observed:
    """A watch that judges from one look right after injection (kill, pause, a toxic)."""

    def __init__(self, look: Callable[[], Effect]) -> None:
        self._look = look
        self._effect: Effect | None = None

    def injected(self) -> None:
        self._effect = self._look()

    def judge(self) -> Effect:
        return self._effect if self._effect is not None else self._look()


def no_effect_check(request: EffectRequest) -> EffectWatch:
    """The default of a kind that cannot prove its effect: its runs are unknown, not passed."""
    kind = getattr(request.fault, "type", "this kind")
    return Observed(lambda: unverified(f"{kind} faults have no effect check"))


def watched(request: EffectRequest, make: Callable[[EffectRequest], EffectWatch]) -> EffectWatch:
    """`make(request)`, with any error while watching turned into an UNVERIFIED effect."""
    try:
        return _Guarded(make(request))
    except Exception as error:  # a broken check must not stop the fault or pass it
        reason = f"the effect check failed to start: {error}"
        return Observed(lambda: unverified(reason))


class _Guarded:
    def __init__(self, inner: EffectWatch) -> None:
        self._inner = inner
        self._error: str | None = None

    def injected(self) -> None:
        try:
            self._inner.injected()
        except Exception as error:
            self._error = f"the effect check failed after injection: {error}"

    def judge(self) -> Effect:
        if self._error is not None:
            return unverified(self._error)
        try:
            return self._inner.judge()
        except Exception as error:
            return unverified(f"the effect check failed before the heal: {error}")


# -- judging (pure, over the recorded history) ----------------------------------------------------


@dataclass(frozen=True)
class EffectVerdict:
    fault_index: int
    repeat: int
    fault_type: str
    effect: Effect | None  # None: the application was never judged (the run stopped first)

    @property
    def verdict(self) -> Verdict:
        ok = self.effect is not None and self.effect.status is EffectStatus.EFFECTIVE
        return Verdict.VALID if ok else Verdict.UNKNOWN

    @property
    def explanation(self) -> str:
        name = f"fault {self.fault_index}.{self.repeat} ({self.fault_type})"
        if self.effect is None:
            return f"{name}: its effect was never checked"
        return f"{name} {self.effect.status.value.replace('_', ' ')}: {self.effect.reason}"


def effect_verdicts(faults: Iterable[FaultEvent]) -> list[EffectVerdict]:
    """One verdict per applied fault: valid only when its effect was seen."""
    events = sorted(faults, key=lambda event: event.at_ns)
    judged = {
        (event.fault_index, event.repeat): Effect.from_json(event.detail.get(EFFECT_KEY))
        for event in events
        if event.phase == "healed"
    }
    return [
        EffectVerdict(
            event.fault_index,
            event.repeat,
            event.fault_type,
            judged.get((event.fault_index, event.repeat)),
        )
        for event in events
        if event.phase == "applied"
    ]


# What each effect watch looks at, in words, for `hftchaos run --dry-run` (harness/dry_run.py).
CHECK_DESCRIPTIONS = {
    "watch_kill": "the process is gone (/proc)",
    "watch_pause": "the process is stopped (state T, or its cgroup frozen)",
    "watch_restart": "a new process of the service started after the injection",
    "watch_counters": "the run's tagged iptables rules are in place and their packet counters move",
    "watch_toxic": "the toxic is listed on the link and bytes pass the proxy in its direction",
    "watch_link_down": "the proxy is disabled and its listen address refuses connections",
    "watch_clock_skew": "libfaketime is mapped, the offset file holds the offset, and the "
    "service's HTTP Date header is off by it",
    "no_effect_check": "none: this kind's effect is not verified (the run says unverified)",
}


def describe_check(fault: FaultBase) -> str:
    """How the run will verify that `fault` took effect."""
    from harness.faults.registry import kind_of  # the kinds import this module

    watch = kind_of(fault).watch_effect
    name = getattr(watch, "__name__", type(watch).__name__)
    return CHECK_DESCRIPTIONS.get(name, name)
