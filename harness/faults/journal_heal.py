"""Undo what a journal says is still applied: at the end of a run (faults whose injection
or heal failed half-way), or for a run whose harness died (`hftchaos heal`, or the next
`hftchaos` command). Each undo step acts only through what survives the harness: kernel rule
tags, the Toxiproxy API (only while the recorded Toxiproxy process lives), clock offset
files, and pids checked against their recorded start time.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.errors import GuardrailError
from harness.faults.clock import faketime_offset_text
from harness.faults.journal import (
    ContinueProcesses,
    EnableProxies,
    FaultJournal,
    JournalState,
    NothingLeft,
    RemoveRules,
    RemoveToxics,
    ResetClocks,
    Undo,
)
from harness.faults.owned import current, end, own, signal_group
from harness.run_marker import processes_of_run
from harness.store.atomic import write_text_atomically
from harness.toxiproxy import ToxiproxyClient


@dataclass
class HealOutcome:
    run_id: str
    undone: list[str] = field(default_factory=list)  # "fault 2 (partition)", ...
    ended: list[str] = field(default_factory=list)  # processes of the run that were left
    errors: list[str] = field(default_factory=list)  # what could not be undone

    @property
    def healed(self) -> bool:
        return not self.errors


def undo_step(step: Undo) -> None:
    """Carry out one undo step; raises when it cannot be done."""
    if isinstance(step, RemoveRules):
        from harness.faults.netfilter import RuleSet, remove

        remove(RuleSet(step.run_id, step.key, ()))  # found by tag
    elif isinstance(step, RemoveToxics | EnableProxies):
        _undo_on_toxiproxy(step)
    elif isinstance(step, ResetClocks):
        for name in step.files:
            if Path(name).exists():
                write_text_atomically(Path(name), faketime_offset_text(0))
    elif isinstance(step, ContinueProcesses):
        for process in step.processes:
            signal_group(process, signal.SIGCONT)
    else:
        assert isinstance(step, NothingLeft)


def _undo_on_toxiproxy(step: RemoveToxics | EnableProxies) -> None:
    if step.server is not None and current(step.server) is None:
        return  # Toxiproxy is gone, and its proxies and toxics with it
    client = ToxiproxyClient(step.api)
    for link in step.links:
        if isinstance(step, EnableProxies):
            client.set_enabled(link, True)
            continue
        present = client.toxics(link)
        for toxic in step.toxics:
            if toxic in present:
                client.remove_toxic(link, toxic)


def undo_unhealed(state: JournalState, journal: FaultJournal, outcome: HealOutcome) -> None:
    """Undo every fault the journal has no heal for, newest first, journaling each heal."""
    for fault in state.unhealed:
        name = f"fault {fault.key} ({fault.kind})"
        failed = False
        for step in fault.undo:
            try:
                undo_step(step)
            except Exception as error:  # keep undoing the rest, report after
                outcome.errors.append(f"{name}: {step.action} failed: {error}")
                failed = True
        if not failed:
            journal.healed(fault.key)
            outcome.undone.append(name)


def end_processes(state: JournalState, outcome: HealOutcome) -> None:
    """End every process of a run whose harness is gone: those it journaled (checked by start
    time) and any that carries its run marker (a service's own children)."""
    for owned in state.processes:
        try:
            if end(owned):
                outcome.ended.append(f"{owned.service} (pid {owned.pid})")
        except GuardrailError:
            continue  # the pid is someone else's now: nothing of ours to end
    if state.run is None:
        return
    for process in processes_of_run(Path(state.run.run_dir)):
        # Ending one may end the next (a group shares the SIGKILL), and any may end by
        # itself since it was listed: one gone by now is nothing left to end.
        try:
            name = process.name()
            owned = own(name, process.pid)
        except (psutil.Error, GuardrailError):
            continue
        if end(owned):
            outcome.ended.append(f"{name} (pid {process.pid}, by its run marker)")


def remove_networks(state: JournalState, journal: FaultJournal, outcome: HealOutcome) -> None:
    """Remove the namespace networks the journal lists as made and not removed (after the
    run's processes have ended: a namespace lives on while a process is inside it)."""
    if not state.networks:
        return
    from harness.backends.local.network_lifetime import remove_recorded

    for bridge, step in state.networks.items():
        failures = remove_recorded(step)
        outcome.errors += [f"network {bridge}: {failure}" for failure in failures]
        if not failures:
            journal.network_removed(bridge)
            outcome.undone.append(f"network {bridge} ({len(step.namespaces)} namespaces)")


def sweep_rules(run_id: str, outcome: HealOutcome) -> None:
    """Kernel rules of the run that no journal line names (a fallback: tags are per run)."""
    import shutil

    if shutil.which("iptables") is None:
        return
    from harness.faults.netfilter import sweep

    try:
        if count := sweep(run_id):
            outcome.undone.append(f"{count} kernel rules tagged with the run")
    except Exception as error:
        outcome.errors.append(f"kernel rules of run {run_id}: {error}")


def heal_crashed_run(state: JournalState, by: str) -> HealOutcome:
    """Undo everything a run whose harness died left behind, and close its journal."""
    run_id = state.run.run_id if state.run else state.path.parent.name
    outcome = HealOutcome(run_id)
    journal = FaultJournal(state.path)
    undo_unhealed(state, journal, outcome)
    end_processes(state, outcome)
    remove_networks(state, journal, outcome)
    sweep_rules(run_id, outcome)
    journal.close(by, outcome.errors)
    return outcome


def describe_heal(outcome: HealOutcome) -> str:
    """One line for a person: what was healed of a run whose harness died, or what was not."""
    done = outcome.undone + [f"ended {name}" for name in outcome.ended]
    what = "; ".join(done) if done else "nothing was left applied"
    if outcome.healed:
        return f"healed run {outcome.run_id}, whose harness died: {what}"
    return (
        f"run {outcome.run_id}, whose harness died, could NOT be fully healed: "
        f"{'; '.join(outcome.errors)} (healed: {what}); retry with `hftchaos heal`"
    )
