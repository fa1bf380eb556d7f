"""The fault timeline: when each fault (and each repeat of it) is applied and healed.

`schedule` is pure; `Timeline` runs it on a thread against the live system, recording a
FaultEvent for every application and heal, and always leaves healing to a HealRegistry so
that whatever is still active when the run ends is healed then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.backends.base import LeaderLookup
from harness.faults.base import FaultContext, HealRegistry
from harness.faults.effects import EFFECT_KEY, EffectRequest, EffectWatch, boot_clock_s, watched
from harness.faults.inject import inject
from harness.faults.registry import kind_of
from harness.raft import ClusterLeaders
from harness.records import DEFAULT_CLUSTER, IN_FORCE_KEY, FaultEvent
from harness.scenario.model import Fault

NS = 1_000_000_000


@dataclass(frozen=True, order=True)
class Step:
    offset_s: float
    order: int  # heals before applications at the same instant
    action: str  # "apply" | "heal"
    fault_index: int
    repeat: int

    @property
    def key(self) -> int:
        return self.fault_index * 1000 + self.repeat


def schedule(faults: Sequence[Fault]) -> list[Step]:
    steps: list[Step] = []
    for index, fault in enumerate(faults):
        times = fault.repeat.times if fault.repeat else 1
        every = fault.repeat.every_s if fault.repeat else 0.0
        duration = fault.active_duration_s()
        for repeat in range(times):
            start = fault.at_s + repeat * every
            steps.append(Step(start, 1, "apply", index, repeat))
            if duration is not None:
                steps.append(Step(start + duration, 0, "heal", index, repeat))
    return sorted(steps)


def last_heal_s(faults: Sequence[Fault]) -> float:
    """When the last fault with a duration heals (or the last one starts)."""
    return max((step.offset_s for step in schedule(faults)), default=0.0)


Leaders = dict[str, tuple[str | None, int | None]]  # cluster -> (leader, its term)


def leaders_now(lookup: LeaderLookup | None) -> Leaders:
    """Every cluster's leader just before an injection (one unnamed cluster for a lookup that
    does not know clusters)."""
    if lookup is None:
        return {}
    views = lookup.raft_views()
    if isinstance(lookup, ClusterLeaders):
        names = {cluster: lookup.cluster_leader(cluster) for cluster in lookup.clusters()}
    else:
        names = {DEFAULT_CLUSTER: lookup.leader()}
    return {c: (n, views[n].term if n in views else None) for c, n in names.items()}


def leader_detail(leaders: Leaders, targets: Sequence[str] | None) -> dict[str, object]:
    """The leader a fault is about: of the cluster whose leader it hit, else the first."""
    hit = [c for c, (name, _) in leaders.items() if targets is not None and name in targets]
    cluster = hit[0] if hit else next(iter(leaders), DEFAULT_CLUSTER)
    leader, term = leaders.get(cluster, (None, None))
    return {
        "leader_before": leader,
        "term_before": term,
        "cluster": cluster,
        "leaders_before": {c: [n, t] for c, (n, t) in leaders.items()},
    }


class Timeline:
    def __init__(
        self,
        faults: Sequence[Fault],
        context: FaultContext,
        registry: HealRegistry,
        publish: Callable[[FaultEvent], None],
    ) -> None:
        self._faults = list(faults)
        self._context = context
        self._registry = registry
        self._publish = publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self._watches: dict[int, EffectWatch] = {}  # by step key, until the heal judges it

    def start(self, origin_ns: int) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(origin_ns,), name="timeline", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def heal_remaining(self) -> None:
        """Heal every fault still active (the end of the run), recording each heal."""
        for key in sorted(self._registry.active, reverse=True):
            self._heal(Step(0.0, 0, "heal", key // 1000, key % 1000))

    def _run(self, origin_ns: int) -> None:
        for step in schedule(self._faults):
            due_ns = origin_ns + int(step.offset_s * NS)
            delay = (due_ns - time.monotonic_ns()) / NS
            if delay > 0 and self._stop.wait(delay):
                return
            if step.action == "apply":
                self._apply(step, late_ns=max(0, time.monotonic_ns() - due_ns))
            else:
                self._heal(step)

    def _apply(self, step: Step, late_ns: int = 0) -> None:
        fault = self._faults[step.fault_index]
        leaders = leaders_now(self._context.leader_lookup)
        leader = next(iter(leaders.values()), (None, None))[0]
        before = leader_detail(leaders, None)
        applied_ns = time.monotonic_ns()
        applied_boot_s = boot_clock_s()
        try:
            active = inject(fault, step.key, self._context)
        except Exception as error:  # recorded; the run's verdict becomes unknown
            self.errors.append(f"fault {step.fault_index} ({fault.type}): {error}")
            self._publish(
                FaultEvent(
                    step.fault_index,
                    step.repeat,
                    fault.type,
                    "failed",
                    applied_ns,
                    detail={**before, "error": str(error)},
                )
            )
            return
        # Applying takes time (rules one by one, ~40 ms for a packet loss): the fault is in
        # force only from here, and the leader may be seen leading in between.
        in_force_ns = time.monotonic_ns()
        self._registry.add(step.key, active)
        kind = kind_of(fault)
        watch = watched(
            EffectRequest(fault, step.key, active, self._context, applied_boot_s),
            kind.watch_effect,
        )
        watch.injected()
        self._watches[step.key] = watch
        # Kinds that take the leader out when aimed at it; others may cause a failover, too.
        before = leader_detail(leaders, active.targets)
        hit = before["leader_before"]
        leader = hit if isinstance(hit, str) else None
        removes_leader = kind.removes_leader and leader in active.targets
        self._publish(
            FaultEvent(
                step.fault_index,
                step.repeat,
                fault.type,
                "applied",
                applied_ns,
                targets=tuple(active.targets),
                detail={
                    **before,
                    **active.detail,
                    IN_FORCE_KEY: in_force_ns,
                    "removes_leader": removes_leader,
                    # Behind schedule, e.g. because the previous step's heal was slow: the
                    # fault's window is that much shorter than the scenario asked.
                    "late_ms": round(late_ns / 1e6, 1),
                },
            )
        )
        if kind.completes_on_injection:
            self._heal(step)

    def _heal(self, step: Step) -> None:
        fault = self._faults[step.fault_index]
        # Judged while the fault is still in force (kernel counters go with their rules).
        watch = self._watches.pop(step.key, None)
        effect: dict[str, object] = {EFFECT_KEY: watch.judge().to_json()} if watch else {}
        healed_ns = time.monotonic_ns()
        try:
            active = self._registry.heal(step.key)
        except Exception as error:
            self.errors.append(f"heal of fault {step.fault_index} ({fault.type}): {error}")
            return
        if active is not None:
            self._publish(
                FaultEvent(
                    step.fault_index,
                    step.repeat,
                    fault.type,
                    "healed",
                    healed_ns,
                    targets=tuple(active.targets),
                    detail=effect,
                )
            )
