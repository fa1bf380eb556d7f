"""Runs whose harness died: found through a machine-wide registry, healed from their journal.

Every run registers itself (`<registry>/<run id>` holds the path of its journal) and removes
its entry once its journal says it was healed. An entry whose journal is not closed and whose
owner is gone is an unfinished run: `heal_unfinished` undoes what its journal lists, ends its
processes and removes its kernel rules. Kernel rules tagged with a run that has no live owner
are removed as well, also those of runs older than the journal (whose entries held a pid).
When a run was unfinished, the Docker engine's containers and networks of dead harnesses go
too (their reaper may have died with the harness).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness import settings
from harness.errors import RuntimeEnvironmentError
from harness.faults.journal import JournalState, owner_alive, read_journal
from harness.faults.journal_heal import HealOutcome, heal_crashed_run, sweep_rules

LEGACY_START_SLACK_S = 1.0


def registry_dir() -> Path:
    return Path(settings.RUN_REGISTRY.value())


def register_run(run_id: str, journal: Path) -> Path:
    entry = registry_dir() / run_id
    try:
        registry_dir().mkdir(parents=True, exist_ok=True)
        entry.write_text(f"{journal.resolve()}\n")
    except OSError as error:
        raise RuntimeEnvironmentError(
            f"cannot register the run in {registry_dir()} ({error.strerror or error}), so a "
            "crash could not be healed later; set HFTCHAOS_RUN_REGISTRY to a writable folder"
        ) from None
    return entry


def unregister_run(run_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (registry_dir() / run_id).unlink()


@dataclass(frozen=True)
class Entry:
    run_id: str
    journal: JournalState | None  # None: no journal (an older harness, or its folder is gone)
    owner_alive: bool


def _read_entry(path: Path) -> Entry:
    try:
        text = path.read_text().strip()
    except OSError:
        return Entry(path.name, None, False)
    if not text.startswith("/"):  # "<pid> <start time>": an entry from before journals
        return Entry(path.name, None, _legacy_owner_alive(text.split()))
    try:
        state = read_journal(Path(text))
    except (OSError, ValueError):
        return Entry(path.name, None, False)
    alive = state.run is not None and owner_alive(state.run)
    return Entry(path.name, state, alive)


def _legacy_owner_alive(parts: list[str]) -> bool:
    """Such an entry holds psutil's create_time, which moves with the boot time the kernel
    recomputes, so it is matched within a second: it only decides whether to heal."""
    try:
        pid, started = int(parts[0]), float(parts[1])
        return abs(psutil.Process(pid).create_time() - started) <= LEGACY_START_SLACK_S
    except (ValueError, IndexError, psutil.Error):
        return False


def entries() -> list[Entry]:
    directory = registry_dir()
    if not directory.is_dir():
        return []
    return [_read_entry(path) for path in sorted(directory.iterdir()) if path.is_file()]


def unfinished(found: list[Entry]) -> list[Entry]:
    """Runs whose harness is gone and whose journal does not say they were healed."""
    return [
        entry
        for entry in found
        if not entry.owner_alive and not (entry.journal and entry.journal.cleanly_healed)
    ]


def heal_unfinished(by: str) -> list[HealOutcome]:
    """Heal every unfinished run; an entry is removed once its run is fully healed."""
    found = entries()
    outcomes = []
    left = unfinished(found)
    for entry in left:
        if entry.journal is None:
            outcome = HealOutcome(entry.run_id)
            sweep_rules(entry.run_id, outcome)
        else:
            outcome = heal_crashed_run(entry.journal, by)
        if outcome.healed:
            unregister_run(entry.run_id)
        outcomes.append(outcome)
    for entry in found:
        if not entry.owner_alive and entry.journal and entry.journal.cleanly_healed:
            unregister_run(entry.run_id)  # healed, but the entry outlived its run
    outcomes += _orphan_rules({entry.run_id for entry in found if entry.owner_alive}, outcomes)
    if left:
        outcomes += _dead_containers()
    return outcomes


def _dead_containers() -> list[HealOutcome]:
    """A SIGKILLed harness's Docker containers and network, when its reaper did not outlive
    it to remove them: found by their labels (harness/backends/docker/leftovers.py)."""
    from harness.backends.docker.leftovers import sweep_engine

    return [
        HealOutcome(run, undone=["removed its containers and network (Docker)"])
        for run in sweep_engine()
    ]


def _orphan_rules(live: set[str], done: list[HealOutcome]) -> list[HealOutcome]:
    """Kernel rules of runs the registry does not know (or no longer lists)."""
    import shutil

    if shutil.which("iptables") is None or os.geteuid() != 0:
        return []
    from harness.faults.netfilter import list_rules, parse_tag

    handled = live | {outcome.run_id for outcome in done}
    orphans = {tag[0] for rule in list_rules() if (tag := parse_tag(rule.tag))} - handled
    outcomes = []
    for run_id in sorted(orphans):
        outcome = HealOutcome(run_id)
        sweep_rules(run_id, outcome)
        outcomes.append(outcome)
    return outcomes


def sweep_dead_runs() -> list[str]:
    """Heal every run whose harness died; returns their ids (`hftchaos sweep`, tests)."""
    return [outcome.run_id for outcome in heal_unfinished("hftchaos sweep")]
