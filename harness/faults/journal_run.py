"""The journal and the guardrail as one run uses them: opened (after healing any run whose
harness died) before anything starts, told of every process the run starts, and closed
after teardown with what, if anything, could not be undone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.markup import escape

from harness.backends.base import Backend, ServiceState
from harness.faults.journal import FaultJournal
from harness.faults.journal_heal import (
    HealOutcome,
    describe_heal,
    remove_networks,
    undo_unhealed,
)
from harness.faults.owned import ProcessGuard
from harness.store.summary import HealingSummary
from harness.topology.plan import Plan


class RunJournal:
    def __init__(self, report: Callable[[str], None]) -> None:
        self.report = report
        self.guard = ProcessGuard()
        self.journal: FaultJournal | None = None
        self.run_id = ""

    def open(self, run_dir: Path, run_id: str) -> FaultJournal:
        from harness.faults.stale import heal_unfinished, register_run

        for outcome in heal_unfinished("the next run"):
            self.report(escape(describe_heal(outcome)))
        self.run_id = run_id
        self.journal = FaultJournal.start(run_dir, run_id)
        register_run(run_id, self.journal.path)
        return self.journal

    def own(self, name: str, pid: int) -> None:
        owned = self.guard.record(name, pid)
        if self.journal is not None:
            self.journal.process(owned)

    def record_services(self, backend: Backend, plan: Plan) -> None:
        """The processes this run brought up: faults may act on these and nothing else."""
        for name in plan.services:
            facts = backend.facts(name)
            if facts.pid is not None and facts.state in (ServiceState.RUNNING, ServiceState.PAUSED):
                self.own(name, facts.pid)

    def close(self, heal_errors: list[str]) -> HealingSummary | None:
        """Undo whatever the journal still lists (a fault whose injection or heal failed
        half-way), then mark the run healed, with what could not be undone; the registry
        entry goes only when nothing was left."""
        from harness.faults.stale import unregister_run

        if self.journal is None:
            return None
        state = self.journal.state()
        outcome = HealOutcome(self.run_id)
        undo_unhealed(state, self.journal, outcome)
        remove_networks(state, self.journal, outcome)  # one teardown could not remove
        errors = [*heal_errors, *outcome.errors]
        self.journal.close("the harness", errors)
        if not errors:
            unregister_run(self.run_id)
        return HealingSummary(
            by="the harness",
            faults=len(state.faults),
            undone_from_journal=len(outcome.undone),
            errors=errors,
        )
