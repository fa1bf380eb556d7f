"""Target resolution, the guardrail and the journal, shared by the kinds."""

from __future__ import annotations

from collections.abc import Sequence

from harness.faults.base import FaultContext
from harness.faults.journal import RemoveRules, Undo
from harness.faults.owned import OwnedProcess
from harness.faults.selectors import resolve_target
from harness.scenario.fault_fields import Target


def services(target: Target, context: FaultContext) -> list[str]:
    return resolve_target(target, context.plan, context.leader_lookup, context.random)


def owned_processes(context: FaultContext, names: Sequence[str]) -> list[OwnedProcess]:
    """The process this run recorded for each service, refusing (GuardrailError) any whose
    pid the backend reports now is not that one, or whose pid has been reused. Services the
    backend knows by no pid (a container) are left to the backend's own records."""
    if context.guard is None:
        return []
    owned = []
    for name in names:
        pid = context.backend.facts(name).pid
        if pid is not None or context.guard.owned(name) is not None:
            owned.append(context.guard.check(name, pid))
    return owned


def record_started(context: FaultContext, names: Sequence[str]) -> None:
    """A fault's heal started these services again: their new processes are the run's."""
    if context.guard is None:
        return
    for name in names:
        pid = context.backend.facts(name).pid
        if pid is not None:
            owned = context.guard.record(name, pid)
            if context.journal is not None:
                context.journal.process(owned)


def toxiproxy_process(context: FaultContext) -> OwnedProcess | None:
    """The run's Toxiproxy process: after a crash its toxics are gone once it is."""
    if context.guard is None or context.plan.toxiproxy is None:
        return None
    return context.guard.owned(context.plan.toxiproxy)


def journal_kernel_rules(
    context: FaultContext, key: int, kind: str, targets: Sequence[str]
) -> None:
    """Journals a kernel-rule fault before the backend adds its rules. Its undo finds the
    rules by their tag (`hftchaos:<run>:<key>`), so it holds whatever the backend adds; on
    Docker the rules live in the containers' namespaces and go with them."""
    journal_intent(
        context, key, kind, targets, [RemoveRules(run_id=context.run_id, key=str(key), rules=[])]
    )


def journal_intent(
    context: FaultContext, key: int, kind: str, targets: Sequence[str], undo: list[Undo]
) -> None:
    """On disk before the fault is applied: what it will touch and how to undo it."""
    if context.journal is not None:
        context.journal.intend(key, kind, list(targets), undo)
